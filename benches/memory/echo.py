# Memory under backpressure (README, "Hostile clients"): RSS per connection of ringgate (PID)
# with N clients posting 8 MiB to /echo without reading the answer.
#   ringgate --workers 1 --fastcgi 127.0.0.1:9300 & python3 benches/memory/echo.py $! 9300 100
import socket, struct, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) * 1024
def rec(t, rid, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, t, rid, len(content), pad) + content + b"\0" * pad
def pair(n, v):
    return bytes([len(n), len(v)]) + n + v
size = 8 << 20
params = b"".join(pair(a.encode(), b.encode()) for a, b in [("REQUEST_METHOD","POST"),("REQUEST_URI","/echo"),("SERVER_PROTOCOL","HTTP/1.1"),("CONTENT_LENGTH",str(size))])
head = rec(1,1,struct.pack(">HB5x",1,1)) + rec(4,1,params) + rec(4,1,b"")
chunk = rec(5,1,b"x"*65528)
base = rss(); socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(head); s.setblocking(False); socks.append([s, 0])
end = time.time() + 4
while time.time() < end:
    for e in socks:
        if e[1] < size:
            try:
                e[1] += e[0].send(chunk)
            except BlockingIOError:
                pass
    time.sleep(0.01)
now = rss()
print(f"{n} stalled 8 MiB echoes: RSS {base>>20} MiB -> {now>>20} MiB, {(now-base)/n/1024:.0f} KiB per connection; sent per conn {sum(e[1] for e in socks)/n/1024:.0f} KiB")
