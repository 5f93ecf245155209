//! The FastCGI engine end to end without sockets: a typical nginx request (BEGIN_REQUEST,
//! ~25 params in one PARAMS record, empty PARAMS, empty STDIN) in, `Event::Request` out, then a
//! small response (head, 14-byte body, finish) encoded and taken as bytes to send. This is the
//! per-request protocol cost a worker pays on top of its syscalls, with the allocator the
//! `ringgate` binary ships with (mimalloc).

use std::time::Instant;

#[path = "support/nginx.rs"]
mod nginx;
use nginx::nginx_request;

use criterion::{criterion_group, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, StatusCode};
use ringgate::channel::{Channel, Event, FastCgiEngine, Limits, Timeouts};

// The binary's global allocator (src/main.rs): nine allocations per request are part of
// what is measured, and a worker makes them with this one.
#[global_allocator]
static GLOBAL: ringgate::alloc::MiMalloc = ringgate::alloc::MiMalloc;

/// One request through the engine: what each iteration measures. Returns the bytes to send.
fn one_request(
    engine: &mut FastCgiEngine,
    request: &[u8],
    headers: &HeaderMap,
    now: Instant,
) -> usize {
    engine.handle_input(request, now).unwrap();
    let mut key = None;
    while let Some(event) = engine.poll_event() {
        if let Event::Request(r) = event {
            key = Some(r.key);
        }
    }
    let key = key.expect("request announced");
    engine.send_head(key, StatusCode::OK, headers, now).unwrap();
    engine.send_body(key, b"Hello, world!\n", now).unwrap();
    engine.finish(key, 0, now).unwrap();
    while engine.poll_event().is_some() {}
    let out = engine.take_output().unwrap();
    engine.handle_sent(out.len(), now);
    out.len()
}

fn response_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("content-length", HeaderValue::from_static("14"));
    headers
}

fn bench(c: &mut Criterion) {
    let (request, _) = nginx_request();
    let headers = response_headers();
    let mut group = c.benchmark_group("fastcgi_engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("nginx_request_and_small_response", |b| {
        let now = Instant::now();
        let mut engine = FastCgiEngine::new(Limits::default(), Timeouts::default(), now);
        b.iter(|| one_request(&mut engine, &request, &headers, now));
    });
    group.finish();
}

/// `ENGINE_LOOP=N cargo bench --bench engine`: N requests in a plain loop and no criterion,
/// for an instruction count (`valgrind --tool=callgrind` at two values of N: the difference
/// divided by the difference of N is the cost of one request, without the start-up).
fn plain_loop(n: usize) {
    let (request, _) = nginx_request();
    let headers = response_headers();
    let now = Instant::now();
    let mut engine = FastCgiEngine::new(Limits::default(), Timeouts::default(), now);
    let sent: usize = (0..n)
        .map(|_| one_request(&mut engine, &request, &headers, now))
        .sum();
    std::hint::black_box(sent);
}

criterion_group!(benches, bench);

fn main() {
    match std::env::var("ENGINE_LOOP") {
        Ok(n) => plain_loop(n.parse().expect("ENGINE_LOOP is a number of requests")),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
