//! End-to-end tests of the real `ringgate` binary and its demo application over TCP and Unix
//! sockets, each run once with `--io uring` and once with `--io epoll`.

#[macro_use]
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringgate::proto::fastcgi::record::encode_record;
use ringgate::proto::fastcgi::{encode_pair, ParamsDecoder, ProtocolStatus, RecordType};
use support::*;

fn hello_over_tcp_and_unix(io: &str) {
    let server = Server::start(io, &[]);
    let r = server.fcgi().call(1, false, "GET", "/hello", b"");
    assert_eq!(r.http(), (200, b"Hello, world!\n".to_vec()));
    let r = server.fcgi_unix().call(1, false, "GET", "/hello", b"");
    assert_eq!(r.http(), (200, b"Hello, world!\n".to_vec()));
    let tcp = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    assert_eq!(
        scgi_call(tcp, "GET", "/hello", b"", no_half_close),
        (200, b"Hello, world!\n".to_vec())
    );
    let unix = UnixStream::connect(server.scgi_unix()).unwrap();
    assert_eq!(
        scgi_call(unix, "GET", "/hello", b"", no_half_close),
        (200, b"Hello, world!\n".to_vec())
    );
}

fn demo_routes(io: &str) {
    let server = Server::start(io, &[]);
    let mut c = server.fcgi();
    assert_eq!(c.call(1, true, "GET", "/status/418", b"").http().0, 418);
    assert_eq!(c.call(1, true, "GET", "/nope", b"").http().0, 404);
    let (status, body) = c.call(1, true, "GET", "/env", b"").http();
    assert_eq!(status, 200);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("REQUEST_URI=/env\n"));
    assert_eq!(
        c.call(1, true, "GET", "/echo-env?name=SERVER_NAME", b"")
            .http(),
        (200, b"localhost".to_vec())
    );
    assert_eq!(
        c.call(1, true, "GET", "/echo-env?name=NOPE", b"").http().0,
        404
    );
    let (status, body) = c
        .call(1, true, "GET", "/stream?chunks=3&size=5&delay_ms=10", b"")
        .http();
    assert_eq!((status, body), (200, b"aaaaabbbbbccccc".to_vec()));
    assert_eq!(c.call(1, true, "GET", "/slow?ms=50", b"").http().0, 200);
}

fn multiplexed_interleaved(io: &str) {
    let server = Server::start(io, &[]);
    let mut c = server.fcgi();
    // 24 requests, records interleaved: all BEGIN+PARAMS first, then every STDIN.
    let ids: Vec<u16> = (1..=24).collect();
    let mut heads = BytesMut::new();
    let mut bodies = BytesMut::new();
    for &id in &ids {
        let body = vec![b'a' + (id % 26) as u8; 1000 * id as usize];
        let all = fcgi_request(id, true, "POST", "/echo", &body);
        // Split the request where STDIN begins: BEGIN (16 bytes) + PARAMS records.
        let stdin_at = find_stdin(&all);
        heads.extend_from_slice(&all[..stdin_at]);
        bodies.extend_from_slice(&all[stdin_at..]);
    }
    c.send(&heads);
    c.send(&bodies);
    let responses = c.responses(&ids);
    for &id in &ids {
        let (status, body) = responses[&id].http();
        assert_eq!(status, 200, "id {id}");
        assert_eq!(
            body,
            vec![b'a' + (id % 26) as u8; 1000 * id as usize],
            "id {id}"
        );
    }
    // The connection is still usable.
    assert_eq!(c.call(7, true, "GET", "/hello", b"").http().0, 200);
}

/// Offset of the first STDIN record in an encoded request.
fn find_stdin(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while bytes[pos + 1] != RecordType::STDIN.0 {
        let len = u16::from_be_bytes([bytes[pos + 4], bytes[pos + 5]]) as usize;
        pos += 8 + len + bytes[pos + 6] as usize;
    }
    pos
}

fn abort_ends_one_request(io: &str) {
    let server = Server::start(io, &[]);
    let mut c = server.fcgi();
    c.send(&fcgi_request(1, true, "GET", "/slow?ms=10000", b""));
    c.send(&fcgi_request(2, true, "GET", "/slow?ms=200", b""));
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    c.abort(1);
    let responses = c.responses(&[1, 2]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(responses[&1].end.is_some());
    assert!(responses[&1].stdout.is_empty() || responses[&1].http().0 != 200);
    assert_eq!(responses[&2].http().0, 200, "the other request goes on");
    let text = server.scrape();
    assert_eq!(
        metric(&text, "ringgate_aborts_total{cause=\"peer_abort\"}"),
        1.0
    );
}

fn keep_conn_both_ways(io: &str) {
    let server = Server::start(io, &[]);
    let mut c = server.fcgi();
    assert_eq!(c.call(1, true, "GET", "/hello", b"").http().0, 200);
    assert_eq!(c.call(1, true, "GET", "/hello", b"").http().0, 200);
    assert_eq!(c.call(1, false, "GET", "/hello", b"").http().0, 200);
    // Without KEEP_CONN the server closes after the response.
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(c.record().unwrap().is_none(), "expected EOF");
}

fn get_values(io: &str) {
    let server = Server::start(io, &["--max-requests-per-connection", "40"]);
    let mut c = server.fcgi();
    let mut q = BytesMut::new();
    for name in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"] {
        encode_pair(&mut q, name.as_bytes(), b"");
    }
    let mut rec = BytesMut::new();
    encode_record(&mut rec, RecordType::GET_VALUES, 0, &q);
    c.send(&rec);
    let r = c.record().unwrap().unwrap();
    assert_eq!(r.record_type, RecordType::GET_VALUES_RESULT);
    let vars = ParamsDecoder::decode_all(&r.content, 4096, 16).unwrap();
    assert_eq!(vars.get("FCGI_MAX_REQS"), Some(&b"40"[..]));
    assert_eq!(vars.get("FCGI_MPXS_CONNS"), Some(&b"1"[..]));
    assert!(vars.get("FCGI_MAX_CONNS").is_some());
}

fn split_records(io: &str) {
    let server = Server::start(io, &[]);
    let mut c = server.fcgi();
    c.stream.set_nodelay(true).unwrap();
    let req = fcgi_request(3, true, "POST", "/echo", b"split across many writes");
    for b in req.iter() {
        c.send(&[*b]);
    }
    let r = c.responses(&[3]).remove(&3).unwrap();
    assert_eq!(r.http(), (200, b"split across many writes".to_vec()));
}

fn one_mebibyte_both_ways(io: &str) {
    let server = Server::start(io, &[]);
    let body: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 256) as u8).collect();
    let mut c = server.fcgi();
    let r = c.call(1, true, "POST", "/echo", &body);
    assert_eq!(r.http(), (200, body.clone()));
    let r = c.call(1, true, "GET", "/stream?chunks=16&size=65536", b"");
    assert_eq!(r.http(), (200, expected_stream(16, 65536)));
    let tcp = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    assert_eq!(
        scgi_call(tcp, "POST", "/echo", &body, tcp_half_close),
        (200, body)
    );
}

fn slow_reader_does_not_delay_others(io: &str) {
    let server = Server::start(io, &["--workers", "1"]);
    // A client that asks for 256 MiB and never reads.
    let mut stuck = server.fcgi();
    stuck.send(&fcgi_request(
        1,
        true,
        "GET",
        "/stream?chunks=4096&size=65536",
        b"",
    ));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let start = Instant::now();
        let r = server.fcgi().call(1, false, "GET", "/hello", b"");
        assert_eq!(r.http().0, 200);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "slowed by a stuck reader"
        );
    }
    let text = server.scrape();
    assert!(
        metric(&text, "ringgate_producer_stalls_total") >= 1.0,
        "{text}"
    );
    drop(stuck);
}

fn thousand_concurrent_connections(io: &str) {
    raise_nofile();
    let server = Server::start(io, &[]);
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", server.fastcgi)).unwrap())
        .collect();
    for c in &mut conns {
        c.write_all(&fcgi_request(1, false, "GET", "/hello", b""))
            .unwrap();
    }
    let mut ok = 0;
    for c in conns {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut fc = FcgiConn::new(c);
        let r = fc.responses(&[1]).remove(&1).unwrap();
        if r.http() == (200, b"Hello, world!\n".to_vec()) {
            ok += 1;
        }
    }
    assert_eq!(ok, 1000);
}

fn sigterm_under_load_loses_nothing(io: &str) {
    let mut server = Server::start(io, &[]);
    let port = server.fastcgi;
    let clients: Vec<_> = (0..40)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = FcgiConn::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
                c.call(1, false, "GET", &format!("/slow?ms={}", 500 + i * 10), b"")
                    .http()
                    .0
            })
        })
        .collect();
    // SIGTERM once all 40 are in flight in the server (not merely sent), so the test does not
    // depend on how fast this machine starts threads.
    server.wait_metric("ringgate_requests_in_flight", |v| v >= 40.0);
    server.terminate();
    let statuses: Vec<u16> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(
        status.success(),
        "exit status {status:?}: {}",
        server.stderr()
    );
}

fn over_limit_params_are_counted(io: &str) {
    let server = Server::start(io, &["--max-params-bytes", "2048"]);
    let mut c = server.fcgi();
    let mut req = BytesMut::new();
    ringgate::proto::fastcgi::BeginRequest {
        role: ringgate::proto::fastcgi::Role::RESPONDER,
        flags: 1,
    }
    .encode(&mut req, 1);
    let mut p = BytesMut::new();
    encode_pair(&mut p, b"HTTP_COOKIE", &[b'x'; 4000]);
    ringgate::proto::fastcgi::record::encode_stream(&mut req, RecordType::PARAMS, 1, &p);
    ringgate::proto::fastcgi::record::encode_stream_end(&mut req, RecordType::PARAMS, 1);
    c.send(&req);
    let r = c.responses(&[1]).remove(&1).unwrap();
    assert_eq!(r.http().0, 431);
    assert_eq!(
        r.end.unwrap().protocol_status,
        ProtocolStatus::REQUEST_COMPLETE
    );
    let text = server.scrape();
    assert_eq!(
        metric(
            &text,
            "ringgate_limit_hits_total{limit=\"max_params_bytes\"}"
        ),
        1.0
    );
}

fn timeouts_are_enforced(io: &str) {
    let server = Server::start(
        io,
        &[
            "--params-timeout",
            "300ms",
            "--keepalive-idle-timeout",
            "400ms",
            "--handler-timeout",
            "300ms",
            "--write-timeout",
            "500ms",
        ],
    );
    // Params never completed: 408 under the request's id.
    let mut c = server.fcgi();
    let mut begin = BytesMut::new();
    ringgate::proto::fastcgi::BeginRequest {
        role: ringgate::proto::fastcgi::Role::RESPONDER,
        flags: 1,
    }
    .encode(&mut begin, 1);
    c.send(&begin);
    let start = Instant::now();
    assert_eq!(c.responses(&[1])[&1].http().0, 408);
    assert!(start.elapsed() < Duration::from_secs(3));
    // Then the idle keep-alive connection is closed.
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(c.record().unwrap().is_none(), "idle connection not closed");
    // A handler slower than its timeout: 504.
    let r = server.fcgi().call(1, false, "GET", "/slow?ms=3000", b"");
    assert_eq!(r.http().0, 504);
    // A peer that never reads is cut off by the write timeout.
    let mut stuck = server.fcgi();
    stuck.send(&fcgi_request(
        1,
        true,
        "GET",
        "/stream?chunks=4096&size=65536",
        b"",
    ));
    let text = server.wait_metric("ringgate_limit_hits_total{limit=\"write_timeout\"}", |v| {
        v >= 1.0
    });
    assert!(
        metric(
            &text,
            "ringgate_limit_hits_total{limit=\"handler_timeout\"}"
        ) >= 1.0
    );
    assert!(metric(&text, "ringgate_limit_hits_total{limit=\"params_timeout\"}") >= 1.0);
}

fn worker_in_flight_limit_refuses_with_overloaded_and_503(io: &str) {
    let server = Server::start(io, &["--workers", "1", "--max-in-flight", "2"]);
    let mut busy: Vec<_> = (0..2)
        .map(|_| {
            let mut c = server.fcgi();
            c.send(&fcgi_request(1, true, "GET", "/slow?ms=1500", b""));
            c
        })
        .collect();
    server.wait_metric("ringgate_requests_in_flight", |v| v >= 2.0);
    let refused = server.fcgi().call(1, true, "GET", "/hello", b"");
    assert!(refused.stdout.is_empty());
    assert_eq!(
        refused.end.unwrap().protocol_status,
        ProtocolStatus::OVERLOADED
    );
    let tcp = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    assert_eq!(scgi_call(tcp, "GET", "/hello", b"", no_half_close).0, 503);
    for c in &mut busy {
        assert_eq!(c.responses(&[1])[&1].http().0, 200);
    }
    let text = server.scrape();
    assert_eq!(
        metric(&text, "ringgate_limit_hits_total{limit=\"max_in_flight\"}"),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "ringgate_fastcgi_refusals_total{protocol_status=\"overloaded\"}"
        ),
        1.0
    );
    // Below the limit again: served.
    assert_eq!(
        server.fcgi().call(1, false, "GET", "/hello", b"").http().0,
        200
    );
}

both_backends!(
    hello_over_tcp_and_unix,
    demo_routes,
    multiplexed_interleaved,
    abort_ends_one_request,
    keep_conn_both_ways,
    get_values,
    split_records,
    one_mebibyte_both_ways,
    slow_reader_does_not_delay_others,
    thousand_concurrent_connections,
    sigterm_under_load_loses_nothing,
    over_limit_params_are_counted,
    timeouts_are_enforced,
    worker_in_flight_limit_refuses_with_overloaded_and_503,
);
