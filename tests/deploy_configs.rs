//! Checks the files under `deploy/` against the code: every metric they name is one ringgate
//! exports (`ringgate::metrics::names`), the dashboard shows every metric, the example config
//! carries the engines' defaults and only limit keys the metrics know, and the systemd socket
//! names are the config's protocol names. The programs that read those files check their syntax
//! in `deploy/check-configs.sh`.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringgate::channel::{Limits, Timeouts};
use ringgate::metrics::{names, KNOWN_LIMITS};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every `ringgate_<name>` token in `text` (a Prometheus series name, not part of a longer
/// identifier).
fn metric_tokens(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut tokens = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("ringgate_").map(|i| from + i) {
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |i| at + i);
        if at == 0 || !is_ident(bytes[at - 1]) {
            tokens.push(&text[at..end]);
        }
        from = end;
    }
    tokens
}

#[test]
fn metric_tokens_finds_series_names_only() {
    assert_eq!(
        metric_tokens(r#"rate(ringgate_aborts_total{x="1"}[5m]) / ringgate:requests:rate5m"#),
        ["ringgate_aborts_total"]
    );
    assert_eq!(
        metric_tokens("my_ringgate_x ringgate_a_bucket"),
        ["ringgate_a_bucket"]
    );
}

#[test]
fn deploy_files_name_only_exported_metrics() {
    // The files that talk about metrics (front-end configs name upstreams `ringgate_*`).
    let mut files = vec![deploy().join("ringgate.example.toml")];
    for dir in ["prometheus", "grafana", "kubernetes"] {
        files_under(&deploy().join(dir), &mut files);
    }
    let mut seen = 0;
    for file in &files {
        let text = read(file);
        for token in metric_tokens(&text) {
            assert!(
                names::is_exported_series(token),
                "{} names {token}, which ringgate does not export (see src/metrics/names.rs)",
                file.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} metric names found under deploy/");
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&deploy().join("grafana/ringgate-dashboard.json"))).unwrap()
}

#[test]
fn dashboard_shows_every_metric_in_well_placed_panels() {
    let dash = dashboard();
    let panels = dash["panels"].as_array().unwrap();
    let mut queries = Vec::new();
    let mut ids = BTreeSet::new();
    let mut boxes = Vec::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id {} twice",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "panel {} is wider than the grid", p["title"]);
        for &(ox, oy, ow, oh, ref title) in &boxes {
            let overlap = x < ox + ow && ox < x + w && y < oy + oh && oy < y + h;
            assert!(!overlap, "panels {} and {title} overlap", p["title"]);
        }
        boxes.push((x, y, w, h, p["title"].to_string()));
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            assert!(!expr.is_empty(), "panel {} has an empty query", p["title"]);
            queries.push(expr.to_owned());
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["definition"].as_str() {
            queries.push(q.to_owned());
        }
    }
    for def in names::ALL {
        assert!(
            queries
                .iter()
                .any(|q| metric_tokens(q).iter().any(|t| t.starts_with(def.name))),
            "no dashboard query shows {}",
            def.name
        );
    }
}

#[test]
fn alert_rules_and_their_tests_cover_the_required_alerts() {
    let rules = read(&deploy().join("prometheus/ringgate-rules.yml"));
    let tests = read(&deploy().join("prometheus/ringgate-rules.test.yml"));
    for alert in [
        "RinggateOverloaded",
        "RinggateHighAbortRate",
        "RinggateProducerStallShareHigh",
        "RinggateLatencyP99High",
        "RinggateWorkerSaturated",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "no {alert} rule"
        );
    }
    for alert in ["RinggateOverloaded", "RinggateHighAbortRate"] {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "no test fires {alert}"
        );
    }
}

fn example() -> toml::Table {
    read(&deploy().join("ringgate.example.toml"))
        .parse()
        .unwrap()
}

fn duration(s: &str) -> Duration {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split]
        .parse()
        .unwrap_or_else(|_| panic!("bad duration {s:?}"));
    match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        unit => panic!("unknown unit {unit:?} in {s:?}"),
    }
}

#[test]
fn example_config_has_every_key_with_the_engine_defaults() {
    let conf = example();
    assert!(["auto", "uring", "epoll"].contains(&conf["io"].as_str().unwrap()));
    conf["metrics"]
        .as_str()
        .unwrap()
        .parse::<SocketAddr>()
        .unwrap();
    let listeners = conf["listeners"].as_table().unwrap();
    for protocol in ["fastcgi", "scgi"] {
        for addr in listeners[protocol].as_array().unwrap() {
            let addr = addr.as_str().unwrap();
            assert!(
                addr.starts_with("unix:/") || addr.parse::<SocketAddr>().is_ok(),
                "bad listener address {addr}"
            );
        }
    }

    let limits = conf["limits"].as_table().unwrap();
    let int = |key: &str| limits[key].as_integer().unwrap() as usize;
    let defaults = Limits::default();
    assert_eq!(int("max_params_bytes"), defaults.max_params_bytes);
    assert_eq!(int("max_params_pairs"), defaults.max_params_pairs);
    assert_eq!(int("max_scgi_header_bytes"), defaults.max_scgi_header_bytes);
    assert_eq!(int("max_headers"), defaults.max_headers);
    assert_eq!(int("max_body_buffer_bytes"), defaults.max_body_buffer_bytes);
    assert_eq!(
        int("max_requests_per_connection"),
        defaults.max_requests_per_connection
    );
    assert_eq!(int("max_connections"), defaults.max_connections);
    assert_eq!(limits["mpxs_conns"].as_bool(), Some(defaults.mpxs_conns));
    assert_eq!(int("send_queue_high_water"), defaults.send_queue_high_water);
    // Every limit key is pre-registered as a metric label, and every max_* label is documented.
    for key in limits.keys().filter(|k| k.starts_with("max_")) {
        assert!(
            KNOWN_LIMITS.contains(&key.as_str()),
            "{key} is not in metrics::KNOWN_LIMITS"
        );
    }
    for key in KNOWN_LIMITS.iter().filter(|k| k.starts_with("max_")) {
        assert!(
            limits.contains_key(*key),
            "the example config does not document {key}"
        );
    }

    let timeouts = conf["timeouts"].as_table().unwrap();
    let secs = |key: &str| duration(timeouts[key].as_str().unwrap());
    let defaults = Timeouts::default();
    assert_eq!(secs("params"), defaults.params);
    assert_eq!(secs("body_idle"), defaults.body_idle);
    assert_eq!(secs("keepalive_idle"), defaults.keepalive_idle);
    for key in ["handler", "write", "drain"] {
        assert!(secs(key) > Duration::ZERO, "{key}");
    }
    for key in KNOWN_LIMITS
        .iter()
        .filter_map(|k| k.strip_suffix("_timeout"))
    {
        assert!(
            timeouts.contains_key(key),
            "the example config does not document [timeouts] {key}"
        );
    }
}

#[test]
fn systemd_socket_names_are_the_config_protocols() {
    let systemd = deploy().join("systemd");
    let service = read(&systemd.join("ringgate.service"));
    let sockets_line = service
        .lines()
        .find_map(|l| l.strip_prefix("Sockets="))
        .unwrap();
    let mut names = BTreeSet::new();
    for socket in sockets_line.split_whitespace() {
        let unit = read(&systemd.join(socket));
        assert!(
            unit.lines().any(|l| l == "Service=ringgate.service"),
            "{socket}"
        );
        assert!(
            unit.lines().any(|l| l.starts_with("ListenStream=")),
            "{socket}"
        );
        let name = unit
            .lines()
            .find_map(|l| l.strip_prefix("FileDescriptorName="))
            .unwrap();
        assert!(names.insert(name.to_owned()), "two sockets named {name}");
    }
    assert!(service.lines().any(|l| l == "Type=notify"));
    assert!(service.contains("--config /etc/ringgate/ringgate.toml"));
    let protocols: BTreeSet<String> = example()["listeners"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, protocols);
}

#[test]
fn ringgate_itself_accepts_the_example_config() {
    use clap::Parser;
    let path = deploy().join("ringgate.example.toml");
    let cli = ringgate::config::Cli::parse_from(["ringgate", "--config", path.to_str().unwrap()]);
    let config = ringgate::config::Config::from_cli(cli).expect("the example config parses");
    assert_eq!(config.metrics, Some("127.0.0.1:9500".parse().unwrap()));
    assert_eq!(config.listeners.len(), 4);
    assert_eq!(
        config.limits.engine().send_queue_high_water,
        Limits::default().send_queue_high_water
    );
}
