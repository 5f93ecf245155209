# Memory per connection whose request is stuck after its variables (README, "Measured
# figures"): each of N connections sends BEGIN_REQUEST and one whole nginx-sized PARAMS record
# (about 1.2 KB), never the empty PARAMS that ends the stream. The engine keeps that record as
# the variables' block, so this counts what a request waiting for its params end holds.
#   prlimit --nofile=20000 ringgate --workers 1 --fastcgi 127.0.0.1:9300 &
#   python3 benches/memory/params.py $! 9300 5000
import os, resource, socket, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import pair, record, rss

pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
variables = [
    ("SCRIPT_FILENAME", "/var/www/html/index.php"), ("QUERY_STRING", "page=2&sort=desc"),
    ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""), ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/index.php"), ("REQUEST_URI", "/index.php?page=2&sort=desc"),
    ("DOCUMENT_URI", "/index.php"), ("DOCUMENT_ROOT", "/var/www/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
    ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_SOFTWARE", "nginx/1.26.3"),
    ("REMOTE_ADDR", "203.0.113.45"), ("REMOTE_PORT", "53218"), ("SERVER_ADDR", "192.0.2.10"),
    ("SERVER_PORT", "80"), ("SERVER_NAME", "www.example.org"), ("REDIRECT_STATUS", "200"),
    ("HTTP_HOST", "www.example.org"),
    ("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"), ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
    ("HTTP_REFERER", "http://www.example.org/index.php?page=1&sort=desc"),
    ("HTTP_COOKIE", "session=6f1c2a9e8b7d4c3f2e1a0b9c8d7e6f5a; theme=dark; consent=1; _ga=GA1.2.1"),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"), ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_SEC_FETCH_MODE", "navigate"), ("HTTP_SEC_FETCH_SITE", "same-origin"),
    ("HTTP_SEC_FETCH_USER", "?1"), ("HTTP_CACHE_CONTROL", "max-age=0"),
    ("HTTP_X_FORWARDED_FOR", "203.0.113.45, 198.51.100.7"), ("HTTP_X_FORWARDED_PROTO", "https"),
    ("HTTP_IF_NONE_MATCH", '"5f3e2a1b-4c7d"'), ("HTTP_IF_MODIFIED_SINCE", "Sat, 28 Nov 2026 10:00:00 GMT"),
]
params = record(4, 1, b"".join(pair(k.encode(), v.encode()) for k, v in variables))
begin = record(1, 1, struct.pack(">HB5x", 1, 1))
base = rss(pid)
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
for s in conns:
    s.sendall(begin + params)
time.sleep(2)
print(f"{n} after a whole PARAMS record ({len(params)} B): "
      f"{(rss(pid) - base) / n / 1024:.1f} KiB per connection")
