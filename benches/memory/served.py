# Memory per idle keep-alive connection that has served a request (README, "Measured
# figures"): what a front end's pooled connections hold between requests. Each of N
# connections sends one GET with KEEP_CONN, reads the reply up to its END_REQUEST and stays
# open; RSS growth is taken before that request (fresh idle) and after it.
#   prlimit --nofile=20000 ringgate --workers 1 --fastcgi 127.0.0.1:9300 &
#   python3 benches/memory/served.py $! 9300 5000
import os, resource, socket, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import request_head, rss

END_REQUEST = 3


def read_until_end(s):
    """Reads records until END_REQUEST; fails on a close before it."""
    buf = b""
    while True:
        while len(buf) >= 8:
            _, rtype, _, length, pad = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + length + pad:
                break
            if rtype == END_REQUEST:
                return
            buf = buf[8 + length + pad:]
        data = s.recv(65536)
        if not data:
            raise RuntimeError("connection closed before END_REQUEST")
        buf += data


pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
base = rss(pid)
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(2)
fresh = rss(pid)
head = request_head([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/hello"),
                     ("SERVER_PROTOCOL", "HTTP/1.1")])
for s in conns:
    s.sendall(head)
for s in conns:
    read_until_end(s)
time.sleep(2)
served = rss(pid)
print(f"{n} idle: {(fresh - base) / n / 1024:.1f} KiB per connection; "
      f"idle after one request: {(served - base) / n / 1024:.1f} KiB")
