# Memory under backpressure (README, "Hostile clients"): RSS per connection of ringgate (PID)
# with N clients that ask for a large streamed response (URI) and never read it.
#   ringgate --workers 1 --fastcgi 127.0.0.1:9300 & python3 benches/memory/stalled.py $! 9300 200 '/stream?chunks=1000&size=65536'
import os, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import request_head, rss

pid, port, n, uri = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
query = uri.split("?", 1)[1] if "?" in uri else ""
req = request_head([("REQUEST_METHOD", "GET"), ("REQUEST_URI", uri),
                    ("SERVER_PROTOCOL", "HTTP/1.1"), ("QUERY_STRING", query)])
base = rss(pid)
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(req)
    socks.append(s)
time.sleep(3)
now = rss(pid)
print(f"{n} stalled readers {uri}: RSS {base >> 20} MiB -> {now >> 20} MiB, "
      f"{(now - base) / n / 1024:.0f} KiB per connection")
