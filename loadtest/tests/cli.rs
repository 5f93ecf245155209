//! The `ringgate-load` binary end to end: JSON output, the SVG plot, A/B comparison, exit
//! codes.

mod support;

use std::process::Command;

use support::Mode;

fn load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_summary_and_plot() {
    let url = support::fastcgi_tcp(Mode::Correct);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("lat.svg");
    let out = load(&[
        "-t",
        &url,
        "-n",
        "500",
        "-c",
        "4",
        "-k",
        "-d",
        "2",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let v = json(&out);
    assert_eq!(v["ok"], 500);
    assert_eq!(v["requests"], 500);
    assert_eq!(v["statuses"]["200"], 500);
    assert_eq!(v["errors_total"], 0);
    assert_eq!(v["mode"], "closed");
    assert_eq!(v["protocol"], "fastcgi");
    assert_eq!(v["connections_opened"], 4);
    for p in ["p50", "p75", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(v["latency_ms"][p].as_f64().unwrap() > 0.0, "{p}");
    }
    assert!(v["latency_ms"]["p50"].as_f64() <= v["latency_ms"]["max"].as_f64());
    assert!(v["cpu"]["per_1000_requests_ms"].as_f64().unwrap() > 0.0);
    assert!(v["throughput_rps"].as_f64().unwrap() > 0.0);
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("<polyline"));
}

#[test]
fn errors_in_json_and_exit_code() {
    let url = support::fastcgi_tcp(Mode::WrongId);
    let out = load(&["-t", &url, "-n", "10", "-c", "1", "--json"]);
    let v = json(&out);
    assert_eq!(v["errors"]["wrong_request_id"], 10);
    assert_eq!(v["errors_by_class"]["protocol"], 10);
    let out = load(&["-t", &url, "-n", "3", "-c", "1", "--fail-on-error"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("errors    wrong_request_id 3"), "{text}");
}

#[test]
fn compare_runs_interleaved_rounds() {
    let a = support::fastcgi_tcp(Mode::Correct);
    let b = support::scgi_tcp();
    let out = load(&[
        "--compare",
        &a,
        &b,
        "--rounds",
        "2",
        "-n",
        "100",
        "-c",
        "2",
        "--json",
    ]);
    let v = json(&out);
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    for p in pairs {
        assert_eq!(p["a"]["target"], a.as_str());
        assert_eq!(p["b"]["target"], b.as_str());
        assert_eq!(p["a"]["ok"], 100);
        assert_eq!(p["b"]["ok"], 100);
        assert!(p["throughput_ratio"].as_f64().unwrap() > 0.0);
    }
    assert!(v["median_p99_ratio"].as_f64().unwrap() > 0.0);
    let out = load(&[
        "-t",
        &a,
        "--compare",
        &b,
        "--rounds",
        "1",
        "-n",
        "20",
        "-c",
        "1",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("median B/A: throughput"), "{text}");
}

#[test]
fn bad_options_exit_2() {
    let out = load(&["-t", "fastcgi://127.0.0.1:1", "--depth", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keep-conn"));
    let out = load(&["-t", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
}
