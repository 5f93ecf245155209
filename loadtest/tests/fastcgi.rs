//! The generator against in-process FastCGI servers, correct and broken: every request must
//! end in exactly the outcome the server's behaviour calls for.

mod support;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ringgate_load::cli::Args;
use ringgate_load::config::Invocation;
use ringgate_load::runner::{run_once, RunResult};
use ringgate_load::stats::ErrorKind;
use support::Mode;

fn run(target: &str, extra: &[&str]) -> RunResult {
    let mut argv = vec!["ringgate-load", "--target", target, "--quiet"];
    argv.extend_from_slice(extra);
    let inv = Invocation::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
    run_once(&Arc::new(inv.plan), &inv.target, false).unwrap()
}

/// Asserts that every request failed with `kind` and nothing else happened.
fn assert_only(r: &RunResult, kind: ErrorKind, n: u64) {
    let s = &r.stats;
    for k in ErrorKind::ALL {
        let want = if k == kind { n } else { 0 };
        assert_eq!(s.error_count(k), want, "{} (all: {:?})", k.name(), s.errors);
    }
    assert_eq!(s.ok, 0);
    assert_eq!(s.scenario.cancelled, 0);
    assert_eq!(s.total_requests(), n);
}

#[test]
fn correct_server_multiplexed_counts_add_up() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &["-n", "300", "-c", "4", "--keep-conn", "--depth", "3"],
    );
    let s = &r.stats;
    assert_eq!(s.ok, 300, "errors {:?}", s.errors);
    assert_eq!(s.total_errors(), 0);
    assert_eq!(s.status_counts(), vec![(200, 300)]);
    assert_eq!(s.latency.len(), 300);
    assert_eq!(s.connections, 4, "keep-conn reuses its connections");
    assert_eq!(s.body_bytes, 300 * 14, "Hello, world!\\n each");
    assert_eq!(s.stderr_bytes, 300 * 21, "one STDERR line each");
    assert!(s.bytes_in > s.body_bytes && s.bytes_out > 0);
}

#[test]
fn correct_server_one_connection_per_request() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(&url, &["-n", "60", "-c", "3", "--threads", "2"]);
    assert_eq!(r.stats.ok, 60, "errors {:?}", r.stats.errors);
    assert_eq!(r.stats.connections, 60);
}

#[test]
fn correct_server_over_unix_socket_with_body_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::fastcgi_unix(Mode::Correct, &dir.path().join("s.sock"));
    let r = run(
        &url,
        &[
            "-n",
            "40",
            "-c",
            "2",
            "-k",
            "-d",
            "2",
            "-u",
            "/echo",
            "--body-size",
            "100000",
            "--verify",
        ],
    );
    assert_eq!(r.stats.ok, 40, "errors {:?}", r.stats.errors);
    assert_eq!(r.stats.body_bytes, 40 * 100_000);
}

#[test]
fn status_counts_follow_the_server() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(&url, &["-n", "10", "-c", "1", "-k", "-u", "/status/503"]);
    assert_eq!(r.stats.status_counts(), vec![(503, 10)]);
    let r = run(&url, &["-n", "5", "-c", "1", "-k", "-u", "/nowhere"]);
    assert_eq!(r.stats.status_counts(), vec![(404, 5)]);
}

#[test]
fn wrong_request_id() {
    let url = support::fastcgi_tcp(Mode::WrongId);
    assert_only(
        &run(&url, &["-n", "20", "-c", "2"]),
        ErrorKind::WrongRequestId,
        20,
    );
    assert_only(
        &run(&url, &["-n", "7", "-c", "1", "-k"]),
        ErrorKind::WrongRequestId,
        7,
    );
}

#[test]
fn truncated_stdout() {
    let url = support::fastcgi_tcp(Mode::TruncateStdout);
    assert_only(
        &run(&url, &["-n", "15", "-c", "3", "-k"]),
        ErrorKind::TruncatedStdout,
        15,
    );
}

#[test]
fn missing_end_request() {
    let url = support::fastcgi_tcp(Mode::MissingEndRequest);
    assert_only(
        &run(&url, &["-n", "12", "-c", "2"]),
        ErrorKind::MissingEndRequest,
        12,
    );
}

#[test]
fn never_ending_request_times_out() {
    let url = support::fastcgi_tcp(Mode::NoEndRequest);
    let started = std::time::Instant::now();
    let r = run(&url, &["-n", "6", "-c", "2", "-k", "--timeout", "150ms"]);
    assert_only(&r, ErrorKind::Timeout, 6);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "3 rounds of 150 ms"
    );
}

#[test]
fn closed_mid_response() {
    let url = support::fastcgi_tcp(Mode::CloseMidResponse);
    assert_only(
        &run(&url, &["-n", "9", "-c", "3"]),
        ErrorKind::ClosedMidResponse,
        9,
    );
}

#[test]
fn overloaded_is_counted_as_refused() {
    let url = support::fastcgi_tcp(Mode::Overloaded);
    assert_only(
        &run(&url, &["-n", "8", "-c", "1", "-k"]),
        ErrorKind::Overloaded,
        8,
    );
}

#[test]
fn connect_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("fastcgi://127.0.0.1:{port}");
    assert_only(
        &run(&url, &["-n", "5", "-c", "1", "-k"]),
        ErrorKind::Connect,
        5,
    );
}

#[test]
fn abort_scenario_counts_end_requests() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &[
            "-n",
            "6",
            "-c",
            "2",
            "-k",
            "--scenario",
            "abort",
            "--abort-after",
            "30ms",
        ],
    );
    let s = &r.stats;
    assert_eq!(s.scenario.aborts_sent, 6);
    assert_eq!(s.scenario.aborts_ended, 6);
    assert_eq!((s.ok, s.total_errors(), s.total_requests()), (0, 0, 6));
}

#[test]
fn half_close_still_gets_the_response() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &["-n", "10", "-c", "2", "-k", "--scenario", "half-close"],
    );
    assert_eq!(
        (r.stats.ok, r.stats.scenario.half_closes),
        (10, 10),
        "{:?}",
        r.stats.errors
    );
    assert_eq!(
        r.stats.connections, 10,
        "a half-closed connection is used once"
    );
}

#[test]
fn disconnect_scenario() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &["-n", "8", "-c", "2", "-k", "--scenario", "disconnect"],
    );
    assert_eq!(r.stats.scenario.disconnects, 8);
    assert_eq!((r.stats.ok, r.stats.total_errors()), (0, 0));
}

#[test]
fn slow_reader_pauses_and_still_verifies() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &[
            "-n",
            "4",
            "-c",
            "2",
            "-k",
            "-s",
            "slow-reader",
            "--pause",
            "100ms",
            "--verify",
        ],
    );
    assert_eq!(
        (r.stats.ok, r.stats.scenario.reader_pauses),
        (4, 4),
        "{:?}",
        r.stats.errors
    );
    assert!(
        r.stats.latency.min() >= 100_000_000,
        "the pause is part of the latency"
    );
    assert_eq!(r.stats.body_bytes, 4 * 64 * 16384);
}

#[test]
fn large_response_verifies_length_and_bytes() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let args = [
        "-n",
        "5",
        "-c",
        "1",
        "-k",
        "-s",
        "large-response",
        "--chunks",
        "40",
    ];
    let r = run(
        &url,
        &[&args[..], &["--chunk-size", "5000", "--verify"]].concat(),
    );
    assert_eq!(r.stats.ok, 5, "{:?}", r.stats.errors);
    assert_eq!(r.stats.body_bytes, 5 * 40 * 5000);
}

#[test]
fn verify_catches_a_wrong_byte_and_a_short_body() {
    let url = support::fastcgi_tcp(Mode::CorruptBody);
    let stream = [
        "-n",
        "4",
        "-c",
        "1",
        "-k",
        "-u",
        "/stream?chunks=4&size=100",
    ];
    assert_only(
        &run(&url, &[&stream[..], &["--verify"]].concat()),
        ErrorKind::VerifyFailed,
        4,
    );
    let echo = [
        "-n",
        "3",
        "-c",
        "1",
        "-u",
        "/echo",
        "--body-size",
        "1000",
        "--verify",
    ];
    assert_only(&run(&url, &echo), ErrorKind::VerifyFailed, 3);
    // Without --verify only the framing is checked, and it is right.
    assert_eq!(run(&url, &stream).stats.ok, 4);
    let url = support::fastcgi_tcp(Mode::ShortBody);
    assert_only(
        &run(&url, &["-n", "5", "-c", "1", "-k"]),
        ErrorKind::LengthMismatch,
        5,
    );
}

#[test]
fn mixed_scenario_accounts_for_every_request() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &[
            "-n", "100", "-c", "4", "-k", "-d", "2", "-s", "mixed", "--verify", "--pause", "20ms",
        ],
    );
    let s = &r.stats;
    assert_eq!(s.total_errors(), 0, "{:?}", s.errors);
    assert_eq!(s.total_requests(), 100);
    // Weights 40+20+10+5+5+5+5+5+5 = 100: 5 aborts, 5 disconnects, 5 half-closes.
    assert_eq!(s.scenario.aborts_sent, 5);
    assert_eq!(s.scenario.aborts_ended, 5);
    assert_eq!(s.scenario.disconnects, 5);
    assert_eq!(s.scenario.half_closes, 5);
    assert_eq!(s.ok, 90);
    let statuses: u64 = s.status_counts().iter().map(|(_, n)| n).sum();
    assert_eq!(statuses, 90);
}

#[test]
fn warmup_requests_are_not_measured() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let r = run(
        &url,
        &[
            "-n", "50", "-c", "2", "-k", "--warmup", "200ms", "--rate", "200",
        ],
    );
    assert_eq!(r.stats.ok, 50);
    assert!(
        r.stats.warmup >= 30,
        "about 40 requests in 200 ms at 200/s: {}",
        r.stats.warmup
    );
}
