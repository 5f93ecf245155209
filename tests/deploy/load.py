"""HTTP load for tests/deploy/pool.sh: THREADS keep-alive clients GET /hello through the load
balancer for SECONDS; at AT seconds the process PID gets signal SIG. Prints one line:
"requests failed out_ms", where out_ms is the time from the signal to the last failed
request (0 when none failed): how long the member stayed in rotation once it was down.

Usage: python3 load.py URL SECONDS AT PID SIG [THREADS]"""
import http.client
import os
import sys
import threading
import time
import urllib.parse

url, seconds, at, pid, sig = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
threads = int(sys.argv[6]) if len(sys.argv) > 6 else 8
u = urllib.parse.urlsplit(url)
start = time.monotonic()
end = start + seconds
lock = threading.Lock()
requests = 0
failures = []


def client():
    global requests
    conn = None
    while time.monotonic() < end:
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conn.request("GET", u.path)
            r = conn.getresponse()
            ok = r.status == 200 and r.read() == b"Hello, world!\n"
        except (OSError, http.client.HTTPException):
            conn = None
        with lock:
            requests += 1
            if not ok:
                failures.append(time.monotonic() - start)


workers = [threading.Thread(target=client) for _ in range(threads)]
for w in workers:
    w.start()
time.sleep(at)
signalled = time.monotonic() - start
os.kill(pid, sig)
for w in workers:
    w.join()
out_ms = max((f - signalled for f in failures), default=0) * 1000
print(requests, len(failures), int(max(out_ms, 0)))
