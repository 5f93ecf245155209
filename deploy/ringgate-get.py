#!/usr/bin/env python3
# ringgate-get.py: one GET request to a FastCGI or SCGI server (ringgate), without a web server
# in front; "curl for FastCGI". Checks that ringgate serves (curl on port 9000 only gets an
# "Empty reply": that port speaks FastCGI, not HTTP). Python 3 standard library only.
#   python3 deploy/ringgate-get.py 127.0.0.1:9000 /hello            FastCGI
#   python3 deploy/ringgate-get.py --scgi 127.0.0.1:9001 /hello     SCGI
#   python3 deploy/ringgate-get.py unix:/run/ringgate/fcgi.sock /hello
# Prints the response (CGI header lines, a blank line, the body) and exits 0 on a 2xx status,
# 1 on any other status, 2 when no complete response came (refused, reset, timed out).
# The deploy tests (deploy/debian/test.sh, deploy/container/test.sh) use it too.
import argparse
import socket
import struct
import sys

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 3, 4, 5, 6, 7
FCGI_RESPONDER = 1


def connect(addr, timeout):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr[len("unix:"):])
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    return s


def cgi_vars(uri):
    path, _, query = uri.partition("?")
    return [
        ("REQUEST_METHOD", "GET"), ("REQUEST_URI", uri), ("SCRIPT_NAME", path),
        ("DOCUMENT_URI", path), ("QUERY_STRING", query), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"),
        ("REMOTE_ADDR", "127.0.0.1"), ("HTTP_HOST", "localhost"),
    ]


def record(rtype, content, request_id=1):
    padding = -len(content) % 8
    return struct.pack(">BBHHBx", 1, rtype, request_id, len(content), padding) + content + b"\0" * padding


def length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def fastcgi(sock, uri):
    pairs = b"".join(length(len(n)) + length(len(v)) + n.encode() + v.encode() for n, v in cgi_vars(uri))
    sock.sendall(
        record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", FCGI_RESPONDER, 0))
        + record(FCGI_PARAMS, pairs) + record(FCGI_PARAMS, b"") + record(FCGI_STDIN, b"")
    )
    buf, out = b"", b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return None  # closed before END_REQUEST
        buf += chunk
        while len(buf) >= 8:
            _, rtype, _, clen, plen = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_STDERR:
                sys.stderr.buffer.write(content)
            elif rtype == FCGI_END_REQUEST:
                return out


def scgi(sock, uri):
    header = b"".join(n.encode() + b"\0" + v.encode() + b"\0"
                      for n, v in [("CONTENT_LENGTH", "0"), ("SCGI", "1")] + cgi_vars(uri))
    sock.sendall(str(len(header)).encode() + b":" + header + b",")
    sock.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out or None


def main():
    ap = argparse.ArgumentParser(description="One GET request to a FastCGI or SCGI server.")
    ap.add_argument("--scgi", action="store_true", help="speak SCGI instead of FastCGI")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("address", help="HOST:PORT or unix:PATH")
    ap.add_argument("uri", nargs="?", default="/hello", help="request URI (default /hello)")
    args = ap.parse_args()
    try:
        with connect(args.address, args.timeout) as sock:
            response = (scgi if args.scgi else fastcgi)(sock, args.uri)
    except OSError as e:
        print(f"ringgate-get: {args.address}: {e}", file=sys.stderr)
        return 2
    if response is None:
        print(f"ringgate-get: {args.address}: closed without a complete response", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(response)
    head = response.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    status = 200
    for line in head.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"status":
            status = int(value.split()[0])
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
