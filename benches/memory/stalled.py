# Memory under backpressure (README, "Hostile clients"): RSS per connection of ringgate (PID)
# with N clients that ask for a large streamed response (URI) and never read it.
#   ringgate --workers 1 --fastcgi 127.0.0.1:9300 & python3 benches/memory/stalled.py $! 9300 200 '/stream?chunks=1000&size=65536'
import socket, struct, sys, time
pid, port, n, uri = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) * 1024
def rec(t, rid, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, t, rid, len(content), pad) + content + b"\0" * pad
def pair(n, v):
    return bytes([len(n), len(v)]) + n + v
params = b"".join(pair(a.encode(), b.encode()) for a, b in [("REQUEST_METHOD","GET"),("REQUEST_URI",uri),("SERVER_PROTOCOL","HTTP/1.1"),("QUERY_STRING",uri.split("?",1)[1] if "?" in uri else "")])
req = rec(1,1,struct.pack(">HB5x",1,1)) + rec(4,1,params) + rec(4,1,b"") + rec(5,1,b"")
base = rss(); socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(req); socks.append(s)
time.sleep(3)
now = rss()
print(f"{n} stalled readers {uri}: RSS {base>>20} MiB -> {now>>20} MiB, {(now-base)/n/1024:.0f} KiB per connection")
