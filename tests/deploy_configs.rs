//! Checks the files under `deploy/` against the code: every metric they name is one ringgate
//! exports (`ringgate::metrics::names`), the dashboard shows every metric, the example config
//! has every settings key with its real default and only limit keys the metrics know, the
//! configs embedded in the Kubernetes manifests are valid settings, and the systemd socket
//! names are the config's protocol names. The programs that read those files check their syntax
//! in `deploy/check-configs.sh`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ringgate::channel::Limit;
use ringgate::metrics::names;
use ringgate::settings::FileMode;
use ringgate::Settings;

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

fn example_path() -> PathBuf {
    deploy().join("ringgate.example.toml")
}

/// The example file with its commented-out keys (`# key = value`) put back.
fn example_with_every_key() -> toml::Table {
    let text: String = read(&example_path())
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => rest,
            _ => line,
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    text.parse().unwrap()
}

fn is_key(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The keys of `table`, with those of its sub-tables as `table.key`.
fn keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let name = format!("{prefix}{key}");
        match value {
            toml::Value::Table(t) => keys(t, &format!("{name}."), out),
            _ => {
                out.insert(name);
            }
        }
    }
}

#[test]
fn example_config_has_every_key_with_its_real_default() {
    // Every value the file sets is the default; its listeners are the ones ringgate uses when
    // none is configured.
    let mut parsed = Settings::from_file(&example_path()).expect("the example config parses");
    let defaults = Settings::default();
    assert_eq!(
        parsed.listeners.fastcgi.len() + parsed.listeners.scgi.len(),
        2
    );
    parsed.listeners.fastcgi.clear();
    parsed.listeners.scgi.clear();
    assert_eq!(parsed, defaults, "the example config is not the defaults");

    // Every key the settings have is in the file (optional ones commented out), and no other.
    let mut full = defaults.clone();
    full.listeners.socket_mode = Some(FileMode(0o660));
    full.listeners.socket_owner = Some("ringgate".into());
    full.listeners.socket_group = Some("www-data".into());
    let mut want = BTreeSet::new();
    keys(&full.to_toml().parse().unwrap(), "", &mut want);
    want.insert("workers".into());
    let mut have = BTreeSet::new();
    let every = example_with_every_key();
    keys(&every, "", &mut have);
    assert_eq!(have, want, "keys of deploy/ringgate.example.toml");
    let commented = Settings::from_toml(&toml::to_string(&every).unwrap()).unwrap();
    assert_eq!(commented.listeners.socket_mode, Some(FileMode(0o660)));

    // Every limit key is a metric label (channel::Limit), and every max_* label is documented.
    let known: Vec<&str> = Limit::ALL.iter().map(|l| l.as_str()).collect();
    let limits = every["limits"].as_table().unwrap();
    for key in limits.keys().filter(|k| k.starts_with("max_")) {
        assert!(
            known.contains(&key.as_str()),
            "{key} is not a channel::Limit"
        );
    }
    for key in known.iter().filter(|k| k.starts_with("max_")) {
        assert!(
            limits.contains_key(*key),
            "the example config does not document {key}"
        );
    }
    let timeouts = every["timeouts"].as_table().unwrap();
    for key in known.iter().filter_map(|k| k.strip_suffix("_timeout")) {
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
    // The listener lists are the ones named after a protocol.
    let protocols: BTreeSet<String> = example_with_every_key()["listeners"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.is_array())
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(names, protocols);
}

#[test]
fn ringgate_itself_accepts_the_example_config() {
    let path = example_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = Settings::from_toml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(printed, Settings::from_file(&path).unwrap());
    assert_eq!(
        printed.metrics.addr(),
        Some("127.0.0.1:9500".parse().unwrap())
    );
}

#[test]
fn the_kubernetes_configs_are_valid_settings() {
    for file in ["configmap.yaml", "sidecar.yaml"] {
        // The TOML embedded in the ConfigMap: the block under `ringgate.toml: |`, dedented.
        let yaml = read(&deploy().join("kubernetes").join(file));
        let toml: String = yaml
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("ringgate.toml: |"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
            .collect();
        assert!(
            toml.contains("[listeners]"),
            "{file}: no embedded config found"
        );
        let settings =
            Settings::from_toml(&toml).unwrap_or_else(|e| panic!("deploy/kubernetes/{file}: {e}"));
        settings.validate().unwrap();
        assert_eq!(
            settings.metrics.addr(),
            Some("0.0.0.0:9500".parse().unwrap())
        );
    }
}
