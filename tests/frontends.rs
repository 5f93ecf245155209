//! End to end through real front ends: nginx (`fastcgi_pass` with `fastcgi_keep_conn on` and
//! an upstream `keepalive` pool, and `scgi_pass`) and HAProxy (`proto fcgi` with
//! `option mpxs-conns` and `option max-reqs 16`), driven by curl and wrk, on both I/O
//! backends. The configurations are `tests/frontends/*.in`, quoted in the README.
//!
//! Locally a missing front end skips its test with a printed reason; under `CI=true` it fails.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use support::frontend::*;
use support::*;

/// An HTTP client that reads the start of a large response, then disconnects.
fn disconnect_mid_response(port: u16, path: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < 128 * 1024 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "response ended early");
        got += n;
    }
    drop(s);
}

fn wrk(port: u16, path: &str) -> (u64, u64) {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c16",
            "-d2s",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let requests = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in")
                .map(|(n, _)| n.trim().parse::<u64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no wrk summary: {text}"));
    let bad = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Non-2xx or 3xx responses:")
                .map(|n| n.trim().parse::<u64>().unwrap())
        })
        .unwrap_or(0);
    (requests, bad)
}

fn exercise(front: &FrontEnd, server: &Server) {
    let port = front.http;
    assert_eq!(
        curl(port, "/hello", &[]),
        (200, b"Hello, world!\n".to_vec())
    );
    assert_eq!(curl(port, "/status/404", &[]).0, 404);
    let body: Vec<u8> = (0..1 << 20).map(|i| (i * 13 % 256) as u8).collect();
    let file = front.dir.join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let posted = curl(
        port,
        "/echo",
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Content-Type: application/octet-stream",
        ],
    );
    assert_eq!(posted.0, 200);
    assert!(
        posted.1 == body,
        "1 MiB echo differs ({} bytes back)",
        posted.1.len()
    );
    let streamed = curl(port, "/stream?chunks=128&size=65536", &[]);
    assert_eq!(streamed.0, 200);
    assert!(
        streamed.1 == expected_stream(128, 65536),
        "8 MiB stream differs"
    );
    let before = metric(
        &server.scrape(),
        "ringgate_aborts_total{cause=\"connection_lost\"}",
    );
    disconnect_mid_response(port, "/stream?chunks=4096&size=65536");
    // The client's disconnect must reach ringgate as a lost connection.
    server.wait_metric("ringgate_aborts_total{cause=\"connection_lost\"}", |v| {
        v > before
    });
    // Still healthy after the disconnect.
    assert_eq!(curl(port, "/hello", &[]).0, 200);
    let (requests, bad) = wrk(port, "/hello");
    assert!(requests > 100, "only {requests} requests in 2 s");
    assert_eq!(bad, 0);
}

fn nginx(io: &str) {
    if !have("nginx") || !have("curl") || !have("wrk") {
        return;
    }
    let server = Server::start(io, &[]);
    let front = start_nginx(&server);
    exercise(&front, &server);
    // SCGI through scgi_pass.
    let scgi_port: u16 = std::fs::read_to_string(front.dir.join("scgi-port"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        curl(scgi_port, "/hello", &[]),
        (200, b"Hello, world!\n".to_vec())
    );
    let body = vec![b'x'; 1 << 20];
    let file = front.dir.join("scgi-body.bin");
    std::fs::write(&file, &body).unwrap();
    let posted = curl(
        scgi_port,
        "/echo",
        &["--data-binary", &format!("@{}", file.display())],
    );
    assert_eq!((posted.0, posted.1.len()), (200, body.len()));
    assert_eq!(
        curl(scgi_port, "/stream?chunks=64&size=65536", &[]).1,
        expected_stream(64, 65536)
    );
    // nginx reused its keep-alive connections: far fewer connections than requests.
    let text = server.scrape();
    let accepted: f64 = text
        .lines()
        .filter(|l| l.starts_with("ringgate_connections_accepted_total{") && l.contains("fastcgi"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    let finished: f64 = text
        .lines()
        .filter(|l| l.starts_with("ringgate_requests_finished_total{") && l.contains("fastcgi"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert!(
        accepted * 5.0 < finished,
        "keepalive unused: {accepted} connections for {finished} requests"
    );
}

fn haproxy(io: &str) {
    if !have("haproxy") || !have("curl") || !have("wrk") {
        return;
    }
    let server = Server::start(io, &[]);
    let front = start_haproxy(&server);
    exercise(&front, &server);
    // HAProxy multiplexed: some connection carried more than one request at once.
    let text = server.scrape();
    let multiplexed: f64 = text
        .lines()
        .filter(|l| l.starts_with("ringgate_connection_requests_in_flight_bucket{le=\"1\"}"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    let total = metric(&text, "ringgate_connection_requests_in_flight_count");
    assert!(
        total > multiplexed,
        "HAProxy never multiplexed ({multiplexed} of {total} at 1)"
    );
}

#[test]
fn nginx_uring() {
    nginx("uring");
}

#[test]
fn nginx_epoll() {
    nginx("epoll");
}

#[test]
fn haproxy_uring() {
    haproxy("uring");
}

#[test]
fn haproxy_epoll() {
    haproxy("epoll");
}
