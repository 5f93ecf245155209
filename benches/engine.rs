//! The FastCGI engine end to end without sockets: a typical nginx request (BEGIN_REQUEST,
//! ~25 params in one PARAMS record, empty PARAMS, empty STDIN) in, `Event::Request` out, then a
//! small response (head, 14-byte body, finish) encoded and taken as bytes to send. This is the
//! per-request protocol cost a worker pays on top of its syscalls.

use std::time::Instant;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, StatusCode};
use ringgate::channel::{Channel, Event, FastCgiEngine, Limits, Timeouts};
use ringgate::proto::fastcgi::record::{encode_stream, encode_stream_end};
use ringgate::proto::fastcgi::{encode_pair, BeginRequest, RecordType, Role, FLAG_KEEP_CONN};

fn nginx_request() -> BytesMut {
    let vars: &[(&str, &str)] = &[
        ("SCRIPT_FILENAME", "/var/www/html/index.php"),
        ("QUERY_STRING", "page=2&sort=desc"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/index.php"),
        ("REQUEST_URI", "/articles/list?page=2&sort=desc"),
        ("DOCUMENT_URI", "/index.php"),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "203.0.113.7"),
        ("REMOTE_PORT", "51234"),
        ("SERVER_ADDR", "192.0.2.10"),
        ("SERVER_PORT", "443"),
        ("SERVER_NAME", "www.example.com"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "www.example.com"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        (
            "HTTP_COOKIE",
            "session=4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99; theme=dark",
        ),
    ];
    let mut params = BytesMut::new();
    for (n, v) in vars {
        encode_pair(&mut params, n.as_bytes(), v.as_bytes());
    }
    let mut out = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, 1);
    encode_stream(&mut out, RecordType::PARAMS, 1, &params);
    encode_stream_end(&mut out, RecordType::PARAMS, 1);
    encode_stream_end(&mut out, RecordType::STDIN, 1);
    out
}

fn bench(c: &mut Criterion) {
    let request = nginx_request();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("content-length", HeaderValue::from_static("14"));
    let mut group = c.benchmark_group("fastcgi_engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("nginx_request_and_small_response", |b| {
        let now = Instant::now();
        let mut engine = FastCgiEngine::new(Limits::default(), Timeouts::default(), now);
        b.iter(|| {
            engine.handle_input(&request, now).unwrap();
            let mut key = None;
            while let Some(event) = engine.poll_event() {
                if let Event::Request(r) = event {
                    key = Some(r.key);
                }
            }
            let key = key.expect("request announced");
            engine
                .send_head(key, StatusCode::OK, &headers, now)
                .unwrap();
            engine.send_body(key, b"Hello, world!\n", now).unwrap();
            engine.finish(key, 0, now).unwrap();
            while engine.poll_event().is_some() {}
            let out = engine.take_output().unwrap();
            engine.handle_sent(out.len(), now);
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
