# Memory per idle connection (README, "Measured figures"): RSS per connection of ringgate
# (PID) with N idle connections, then with each stuck in the middle of its PARAMS.
#   prlimit --nofile=20000 ringgate --workers 1 --fastcgi 127.0.0.1:9300 &
#   python3 benches/memory/idle.py $! 9300 5000
import os, resource, socket, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import record, rss

pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
base = rss(pid)
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(2)
now = rss(pid)
print(f"{n} idle: {(now - base) / n / 1024:.1f} KiB per connection")
# BEGIN_REQUEST, then the first 10 bytes of a PARAMS record that never completes.
begin = record(1, 1, struct.pack(">HB5x", 1, 1))
params = record(4, 1, bytes([14, 1]) + b"REQUEST_METHOD" + b"G")
for s in idle:
    s.sendall(begin + params[:18])
time.sleep(2)
now = rss(pid)
print(f"{n} mid-PARAMS: {(now - base) / n / 1024:.1f} KiB per connection")
