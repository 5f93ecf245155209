//! The generator against an in-process SCGI server.

mod support;

use std::sync::Arc;

use clap::Parser;
use ringgate_load::cli::Args;
use ringgate_load::config::Invocation;
use ringgate_load::runner::{run_once, RunResult};

fn run(target: &str, extra: &[&str]) -> RunResult {
    let mut argv = vec!["ringgate-load", "--target", target, "--quiet"];
    argv.extend_from_slice(extra);
    let inv = Invocation::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
    run_once(&Arc::new(inv.plan), &inv.target, false).unwrap()
}

#[test]
fn correct_server_counts_add_up() {
    let url = support::scgi_tcp();
    let r = run(&url, &["-n", "80", "-c", "4", "--threads", "2"]);
    assert_eq!(r.stats.ok, 80, "{:?}", r.stats.errors);
    assert_eq!(r.stats.total_errors(), 0);
    assert_eq!(r.stats.status_counts(), vec![(200, 80)]);
    assert_eq!(r.stats.connections, 80);
    assert_eq!(r.stats.body_bytes, 80 * 14);
}

#[test]
fn echo_and_stream_verify() {
    let url = support::scgi_tcp();
    let r = run(
        &url,
        &[
            "-n",
            "10",
            "-c",
            "2",
            "-u",
            "/echo",
            "--body-size",
            "70000",
            "--verify",
        ],
    );
    assert_eq!(r.stats.ok, 10, "{:?}", r.stats.errors);
    assert_eq!(r.stats.body_bytes, 700_000);
    let r = run(
        &url,
        &[
            "-n",
            "4",
            "-s",
            "large-response",
            "--chunks",
            "30",
            "--verify",
        ],
    );
    assert_eq!(r.stats.ok, 4, "{:?}", r.stats.errors);
}

#[test]
fn scenarios() {
    let url = support::scgi_tcp();
    let r = run(&url, &["-n", "5", "-c", "1", "-s", "half-close"]);
    assert_eq!(
        (r.stats.ok, r.stats.scenario.half_closes),
        (5, 5),
        "{:?}",
        r.stats.errors
    );
    let r = run(&url, &["-n", "5", "-c", "1", "-s", "disconnect"]);
    assert_eq!(
        (r.stats.scenario.disconnects, r.stats.total_errors()),
        (5, 0)
    );
    let r = run(
        &url,
        &[
            "-n",
            "3",
            "-c",
            "3",
            "-s",
            "slow-reader",
            "--pause",
            "50ms",
            "--verify",
        ],
    );
    assert_eq!(
        (r.stats.ok, r.stats.scenario.reader_pauses),
        (3, 3),
        "{:?}",
        r.stats.errors
    );
    let r = run(
        &url,
        &[
            "-n", "45", "-c", "3", "-s", "mixed", "--verify", "--pause", "10ms",
        ],
    );
    assert_eq!(r.stats.total_errors(), 0, "{:?}", r.stats.errors);
    assert_eq!(r.stats.total_requests(), 45);
    assert_eq!(r.stats.scenario.aborts_sent, 0, "no abort over SCGI");
}
