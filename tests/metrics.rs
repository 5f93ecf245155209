//! The `/metrics` endpoint after real scenarios against the real binary: each scenario must
//! change exactly the series it names. Then `promtool check metrics` on the scraped text, and
//! a real Prometheus server that scrapes ringgate and answers a PromQL query.
//!
//! Locally a missing Prometheus skips those two tests with a printed reason; under `CI=true`
//! they fail.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn slow_reader_raises_producer_stalls() {
    let server = Server::start("uring", &["--send-queue-high-water", "65536"]);
    let before = server.scrape();
    assert_eq!(metric(&before, "ringgate_producer_stalls_total"), 0.0);
    let mut c = server.fcgi();
    c.send(&fcgi_request(
        1,
        true,
        "GET",
        "/stream?chunks=256&size=65536",
        b"",
    ));
    // Do not read for a while: the kernel buffers fill, then the send queue.
    std::thread::sleep(Duration::from_millis(700));
    let r = c.responses(&[1]).remove(&1).unwrap();
    assert_eq!(r.http().1.len(), 256 * 65536);
    let text = server.scrape();
    assert!(
        metric(&text, "ringgate_producer_stalls_total") >= 1.0,
        "{text}"
    );
    let stalled = metric(&text, "ringgate_producer_stall_seconds_sum");
    assert!(stalled >= 0.2, "stall time {stalled}");
}

#[test]
fn abort_request_counts_peer_abort() {
    let server = Server::start("uring", &[]);
    let mut c = server.fcgi();
    c.send(&fcgi_request(1, true, "GET", "/slow?ms=5000", b""));
    std::thread::sleep(Duration::from_millis(100));
    c.abort(1);
    c.responses(&[1]);
    server.wait_metric("ringgate_aborts_total{cause=\"peer_abort\"}", |v| v == 1.0);
}

#[test]
fn client_half_close_counts_read_side() {
    let server = Server::start("epoll", &[]);
    let tcp = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    // The half-close arrives while the response is still owed (the handler sleeps).
    let (status, body) = scgi_call(tcp, "GET", "/slow?ms=300", b"", tcp_half_close);
    assert_eq!((status, body), (200, b"slept 300 ms\n".to_vec()));
    let text = server.wait_metric(
        "ringgate_half_closes_total{side=\"read\",protocol=\"scgi\"}",
        |v| v == 1.0,
    );
    assert_eq!(
        metric(&text, "ringgate_aborts_total{cause=\"connection_lost\"}"),
        0.0
    );
}

#[test]
fn disconnect_mid_response_counts_connection_lost() {
    let server = Server::start("uring", &[]);
    let mut c = server.fcgi();
    c.send(&fcgi_request(
        1,
        true,
        "GET",
        "/stream?chunks=10000&size=65536&delay_ms=1",
        b"",
    ));
    let first = c.record().unwrap().unwrap();
    assert!(!first.content.is_empty());
    c.stream.shutdown(Shutdown::Both).unwrap();
    drop(c);
    server.wait_metric("ringgate_aborts_total{cause=\"connection_lost\"}", |v| {
        v == 1.0
    });
}

#[test]
fn over_limit_request_counts_the_limit() {
    let server = Server::start("uring", &["--max-scgi-header-bytes", "512"]);
    let mut tcp = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    tcp.write_all(b"100000:CONTENT_LENGTH\x000\x00").unwrap();
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    assert!(
        response.starts_with(b"Status: 431"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    server.wait_metric(
        "ringgate_limit_hits_total{limit=\"max_scgi_header_bytes\"}",
        |v| v == 1.0,
    );
}

#[test]
fn requests_are_counted_by_protocol_and_status_class() {
    let server = Server::start("epoll", &[]);
    let mut c = server.fcgi();
    for _ in 0..3 {
        assert_eq!(c.call(1, true, "GET", "/hello", b"").http().0, 200);
    }
    assert_eq!(c.call(1, true, "GET", "/status/503", b"").http().0, 503);
    let text = server.wait_metric(
        "ringgate_requests_finished_total{protocol=\"fastcgi\",status_class=\"2xx\"}",
        |v| v == 3.0,
    );
    assert_eq!(
        metric(
            &text,
            "ringgate_requests_finished_total{protocol=\"fastcgi\",status_class=\"5xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "ringgate_request_duration_seconds_count{protocol=\"fastcgi\"}"
        ),
        4.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "ringgate_build_info{{application=\"ringgate\",version=\"{version}\",\
             ringgate_version=\"{version}\"}} 1"
        )),
        "{text}"
    );
    // Slab occupancy: the one open connection, and the request capacity (max_in_flight).
    assert_eq!(
        metric(
            &text,
            "ringgate_slab_entries{worker=\"0\",kind=\"connections\"}"
        ) + metric(
            &text,
            "ringgate_slab_entries{worker=\"1\",kind=\"connections\"}"
        ),
        1.0
    );
    let capacity = metric(
        &text,
        "ringgate_slab_capacity{worker=\"0\",kind=\"requests\"}",
    )
    .max(metric(
        &text,
        "ringgate_slab_capacity{worker=\"1\",kind=\"requests\"}",
    ));
    assert_eq!(capacity, 10_000.0);
    assert!(text.contains("ringgate_io_backend{backend=\"epoll\"} 1"));
}

fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{program} is required under CI (install it in .ci/run)"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

#[test]
fn promtool_accepts_the_scraped_text() {
    if !have("promtool") {
        return;
    }
    let server = Server::start("uring", &[]);
    let mut c = server.fcgi();
    c.call(1, true, "GET", "/hello", b"");
    let text = server.scrape();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_real_prometheus_scrapes_and_answers_promql() {
    if !have("prometheus") || !have("curl") {
        return;
    }
    let server = Server::start("uring", &[]);
    let mut c = server.fcgi();
    for _ in 0..5 {
        c.call(1, true, "GET", "/hello", b"");
    }
    let dir = server.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ringgate\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            server.metrics
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let query = "sum(ringgate_requests_finished_total{protocol=\"fastcgi\"})";
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                "-G",
                &format!("http://127.0.0.1:{port}/api/v1/query"),
            ])
            .args(["--data-urlencode", &format!("query={query}")])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        if body.contains("\"5\"]") {
            break body;
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "Prometheus never answered 5: {body}\n{}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(answer.contains("\"status\":\"success\""), "{answer}");
}
