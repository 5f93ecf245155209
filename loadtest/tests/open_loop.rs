//! Coordinated-omission correction: one 500 ms server stall must show in the open loop's
//! tail (every request scheduled during the stall waited), while the closed loop, which stops
//! sending while it waits, sees it as a single slow request.

mod support;

use std::sync::Arc;

use clap::Parser;
use ringgate_load::cli::Args;
use ringgate_load::config::Invocation;
use ringgate_load::runner::{run_once, RunResult};
use support::Mode;

fn run(target: &str, extra: &[&str]) -> RunResult {
    let mut argv = vec!["ringgate-load", "--target", target, "--quiet"];
    argv.extend_from_slice(extra);
    let inv = Invocation::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
    run_once(&Arc::new(inv.plan), &inv.target, false).unwrap()
}

const MS: u64 = 1_000_000;

#[test]
fn open_loop_counts_the_requests_a_stall_delayed() {
    let url = support::fastcgi_tcp(Mode::StallOnce { nth: 100, ms: 500 });
    let r = run(
        &url,
        &["--rate", "200", "--duration", "3s", "-c", "1", "-k"],
    );
    let h = &r.stats.latency;
    assert_eq!(r.stats.total_errors(), 0, "{:?}", r.stats.errors);
    assert!(
        (590..=601).contains(&r.stats.ok),
        "3 s at 200/s: {}",
        r.stats.ok
    );
    assert!(h.max() >= 500 * MS, "max {} ms", h.max() / MS);
    // About 100 requests were due during the stall, waiting 500 ms down to 0: the slowest
    // 1% (6 of 600) all waited about half a second.
    let p99 = h.value_at_quantile(0.99);
    assert!(p99 >= 400 * MS, "p99 {} ms", p99 / MS);
    let p90 = h.value_at_quantile(0.90);
    assert!(
        p90 >= 100 * MS,
        "p90 {} ms: a sixth of the requests were delayed",
        p90 / MS
    );
}

#[test]
fn closed_loop_sees_one_slow_request() {
    let url = support::fastcgi_tcp(Mode::StallOnce { nth: 100, ms: 500 });
    let r = run(&url, &["-n", "2000", "-c", "1", "-k"]);
    let h = &r.stats.latency;
    assert_eq!(r.stats.ok, 2000);
    assert!(h.max() >= 500 * MS);
    let p99 = h.value_at_quantile(0.99);
    assert!(p99 < 100 * MS, "p99 {} ms", p99 / MS);
}
