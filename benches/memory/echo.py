# Memory under backpressure (README, "Hostile clients"): RSS per connection of ringgate (PID)
# with N clients posting 8 MiB to /echo without reading the answer.
#   ringgate --workers 1 --fastcgi 127.0.0.1:9300 & python3 benches/memory/echo.py $! 9300 100
import os, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import record, request_head, rss

pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
size = 8 << 20
head = request_head([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo"),
                     ("SERVER_PROTOCOL", "HTTP/1.1"), ("CONTENT_LENGTH", str(size))],
                    body_follows=True)
chunk = record(5, 1, b"x" * 65528)
base = rss(pid)
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(head)
    s.setblocking(False)
    socks.append([s, 0])
end = time.time() + 4
while time.time() < end:
    for e in socks:
        if e[1] < size:
            try:
                e[1] += e[0].send(chunk)
            except BlockingIOError:
                pass
    time.sleep(0.01)
now = rss(pid)
sent = sum(e[1] for e in socks) / n / 1024
print(f"{n} stalled 8 MiB echoes: RSS {base >> 20} MiB -> {now >> 20} MiB, "
      f"{(now - base) / n / 1024:.0f} KiB per connection; sent per connection {sent:.0f} KiB")
