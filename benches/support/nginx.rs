//! The FastCGI request the benchmarks decode: what nginx writes for a typical browser request.
//! Shared by the proto and engine benchmarks (`#[path]`-included by each).

use bytes::{Bytes, BytesMut};
use ringgate::proto::fastcgi::{encode_request, Role, FLAG_KEEP_CONN};

/// What nginx sends for `GET /index.php?page=2&sort=desc` from a browser, in nginx's order:
/// `fastcgi_params` first (with `SCRIPT_FILENAME` from `fastcgi.conf`), then one `HTTP_*` per
/// request header.
pub const NGINX_PARAMS: &[(&str, &str)] = &[
    ("SCRIPT_FILENAME", "/var/www/html/index.php"),
    ("QUERY_STRING", "page=2&sort=desc"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/index.php"),
    ("REQUEST_URI", "/index.php?page=2&sort=desc"),
    ("DOCUMENT_URI", "/index.php"),
    ("DOCUMENT_ROOT", "/var/www/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"),
    ("GATEWAY_INTERFACE", "CGI/1.1"),
    ("SERVER_SOFTWARE", "nginx/1.26.3"),
    ("REMOTE_ADDR", "203.0.113.45"),
    ("REMOTE_PORT", "53218"),
    ("REMOTE_USER", ""),
    ("SERVER_ADDR", "192.0.2.10"),
    ("SERVER_PORT", "80"),
    ("SERVER_NAME", "www.example.org"),
    ("REDIRECT_STATUS", "200"),
    ("HTTP_HOST", "www.example.org"),
    (
        "HTTP_USER_AGENT",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "HTTP_ACCEPT",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
    ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
    (
        "HTTP_REFERER",
        "http://www.example.org/index.php?page=1&sort=desc",
    ),
    (
        "HTTP_COOKIE",
        "session=6f1c2a9e8b7d4c3f2e1a0b9c8d7e6f5a; theme=dark; consent=1; \
         _ga=GA1.2.123456789.1700000000",
    ),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
    ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_SEC_FETCH_MODE", "navigate"),
];

/// The whole request as nginx writes it to the socket (request id 1, keep-conn).
pub fn nginx_request() -> (Bytes, usize) {
    let mut wire = BytesMut::new();
    let pairs = NGINX_PARAMS
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    let params_len = encode_request(&mut wire, 1, Role::RESPONDER, FLAG_KEEP_CONN, pairs, b"");
    (wire.freeze(), params_len)
}
