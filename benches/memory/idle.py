# Memory per idle connection (README, "Measured figures"): RSS per connection of ringgate
# (PID) with N idle connections, then with each stuck in the middle of its PARAMS.
#   prlimit --nofile=20000 ringgate --workers 1 --fastcgi 127.0.0.1:9300 &
#   python3 benches/memory/idle.py $! 9300 5000
import resource, socket, struct, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) * 1024
base = rss(); idle = []
for i in range(n):
    idle.append(socket.create_connection(("127.0.0.1", port)))
time.sleep(2)
a = rss()
print(f"{n} idle: {(a-base)/n/1024:.1f} KiB per connection")
begin = struct.pack(">BBHHBx", 1, 1, 1, 8, 0) + struct.pack(">HB5x", 1, 1)
params = struct.pack(">BBHHBx", 1, 4, 1, 16, 0) + bytes([14, 1]) + b"REQUEST_METHOD" + b"G" + b"\0" * 0
for s in idle:
    s.sendall(begin + params[:8+10])
time.sleep(2)
b = rss()
print(f"{n} mid-PARAMS: {(b-base)/n/1024:.1f} KiB per connection")
