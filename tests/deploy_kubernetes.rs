//! Checks the Kubernetes manifests in `deploy/kubernetes/` offline, as a cluster would take
//! them:
//! - every document validates against the Kubernetes API schemas (`kubernetes-validate
//!   --strict`, PyPI, which ships them) of 1.30, the first release whose preStop hooks may
//!   `sleep`, and of the newest release it knows. `.ci/run` installs the tool; elsewhere a
//!   missing tool skips that test (it fails when `CI=true`);
//! - every ringgate container runs the image `deploy/container/build.sh` builds
//!   (`ringgate:<crate version>`) with its config from a ConfigMap, and that config passes
//!   `ringgate --check-config`; FastCGI is on 9000 and SCGI on 9001 (the binary's defaults) in
//!   the config, the container ports and the Service;
//! - the ringgate Deployments scale and stop cleanly: at least 2 replicas, a
//!   PodDisruptionBudget that keeps one serving and still lets a node drain, readiness on
//!   `GET /health` at the metrics port, a preStop pause, and a termination grace period above
//!   preStop + `[timeouts] drain` + the 5 s ringgate allows beyond the drain.
//!
//! The YAML is read by Python's PyYAML (Debian's python3-yaml, as in `deploy/check-configs.sh`)
//! and handed over as JSON. Run: `cargo test --test deploy_kubernetes`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringgate::settings::ListenAddr;
use ringgate::Settings;
use serde_json::Value;

/// Kubernetes releases whose API schemas the manifests must pass: the first where a preStop
/// hook may `sleep`, and `kubernetes-validate`'s default (the newest it ships).
const KUBERNETES_VERSIONS: [Option<&str>; 2] = [Some("1.30"), None];

/// Time ringgate gives its workers beyond `[timeouts] drain` before it aborts them
/// (`DRAIN_GRACE` in src/server.rs).
const DRAIN_GRACE: Duration = Duration::from_secs(5);

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the calling test (returns true after saying why) where `what` is missing, unless CI
/// is set: there a missing tool is a failure.
fn missing(what: &str, available: bool) -> bool {
    if available {
        return false;
    }
    assert!(!ci(), "{what} is not installed (CI=true): run .ci/run");
    eprintln!("skipped: {what} is not installed (.ci/run installs it)");
    true
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubernetes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    files
}

/// Every document of every manifest, with its file's name; `None` when PyYAML is missing.
fn documents() -> Option<Vec<(String, Value)>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             json.dump([[f.rsplit('/', 1)[-1], d] for f in sys.argv[1:]\n\
                        for d in yaml.safe_load_all(open(f)) if d], sys.stdout)",
        ])
        .args(manifest_files())
        .output();
    let available = out.as_ref().is_ok_and(|o| o.status.success());
    if missing("python3 with PyYAML (python3-yaml)", available) {
        return None;
    }
    let docs: Vec<(String, Value)> = serde_json::from_slice(&out.unwrap().stdout).unwrap();
    Some(docs)
}

fn kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a (String, Value)> {
    docs.iter().filter(|(_, d)| d["kind"] == kind).collect()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap()
}

/// Whether a label selector's matchLabels all hold in `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels[k] == *v)
}

/// `ringgate --check-config --config FILE` on `toml`: the effective settings it prints.
fn check_config(toml: &str, what: &str) -> Settings {
    let dir = tempfile::Builder::new()
        .prefix("ringgate-k8s-")
        .tempdir()
        .unwrap();
    let file = dir.path().join("ringgate.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .arg("--check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    drop(dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: ringgate --check-config refused it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Settings::from_toml(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn tcp_ports(addrs: &[ListenAddr]) -> Vec<u16> {
    addrs
        .iter()
        .filter_map(|a| match a {
            ListenAddr::Tcp(addr) => Some(addr.port()),
            _ => None,
        })
        .collect()
}

/// A container's port named `name` (its containerPort).
fn container_port(container: &Value, name: &str) -> Option<u64> {
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
}

/// A pod's ringgate containers: those running the ringgate image.
fn ringgate_containers(pod_spec: &Value) -> Vec<&Value> {
    pod_spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["image"].as_str().unwrap().starts_with("ringgate"))
        .collect()
}

/// The config a ringgate container reads (`--config FILE`), from the ConfigMap mounted over it.
fn container_config<'a>(
    docs: &'a [(String, Value)],
    pod_spec: &Value,
    container: &Value,
    what: &str,
) -> &'a str {
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no args (expected --config FILE)"))
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--config")
        .unwrap_or_else(|| panic!("{what}: no --config in args {args:?}"));
    let config = args[at + 1];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| config.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("{what}: nothing is mounted at {config}"));
    let key = match mount["subPath"].as_str() {
        Some(key) => key.to_owned(),
        None => config[mount["mountPath"].as_str().unwrap().len()..]
            .trim_start_matches('/')
            .to_owned(),
    };
    let volume = pod_spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("{what}: no volume {}", mount["name"]));
    let map = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {config} is not from a ConfigMap"));
    let (_, cm) = kind(docs, "ConfigMap")
        .into_iter()
        .find(|(_, d)| name(d) == map)
        .unwrap_or_else(|| panic!("{what}: no ConfigMap {map}"));
    cm["data"][&key]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: ConfigMap {map} has no key {key}"))
}

#[test]
fn manifests_pass_the_kubernetes_api_schemas() {
    let available = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if missing(
        "kubernetes-validate (pip install kubernetes-validate)",
        available,
    ) {
        return;
    }
    for version in KUBERNETES_VERSIONS {
        let mut cmd = Command::new("kubernetes-validate");
        cmd.args(["--strict", "--no-warn"]);
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = cmd.args(manifest_files()).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate (Kubernetes {}):\n{text}",
            version.unwrap_or("newest")
        );
        // One "passed" line per document: none was skipped as an unknown kind.
        let docs = documents().map_or(0, |d| d.len());
        assert_eq!(text.matches(" passed ").count(), docs, "{text}");
        eprint!("{text}");
    }
}

#[test]
fn ringgate_containers_run_the_built_image_with_a_valid_config_on_the_default_ports() {
    let Some(docs) = documents() else { return };
    let image = format!("ringgate:{}", env!("CARGO_PKG_VERSION"));
    let mut seen = 0;
    for (file, deployment) in kind(&docs, "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        for c in ringgate_containers(pod) {
            let what = format!("{file}: {} container {}", name(deployment), c["name"]);
            assert_eq!(
                c["image"],
                image.as_str(),
                "{what}: build.sh builds {image}"
            );
            let settings = check_config(container_config(&docs, pod, c, &what), &what);
            for (proto, addrs, port) in [
                ("fastcgi", &settings.listeners.fastcgi, 9000),
                ("scgi", &settings.listeners.scgi, 9001),
            ] {
                for p in tcp_ports(addrs) {
                    assert_eq!(p, port, "{what}: {proto} listener on port {p}, not {port}");
                    assert_eq!(
                        container_port(c, proto),
                        Some(u64::from(port)),
                        "{what}: no containerPort {port} named {proto}"
                    );
                }
            }
            let metrics = settings.metrics.addr().expect("metrics served");
            assert_eq!(
                container_port(c, "metrics"),
                Some(u64::from(metrics.port())),
                "{what}: the metrics port is {metrics}"
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "both deployment.yaml and sidecar.yaml run ringgate"
    );
    // The Services' SCGI and FastCGI ports are the defaults too.
    for (file, service) in kind(&docs, "Service") {
        for p in service["spec"]["ports"].as_array().unwrap() {
            let want = match p["name"].as_str() {
                Some("fastcgi") => 9000,
                Some("scgi") => 9001,
                _ => continue,
            };
            assert_eq!(p["port"], want, "{file}: Service {} {p}", name(service));
        }
    }
    // No file mentions the old SCGI port.
    for file in manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("4000"), "{}: port 4000", file.display());
    }
}

#[test]
fn ringgate_deployments_scale_and_drain() {
    let Some(docs) = documents() else { return };
    for (file, deployment) in kind(&docs, "Deployment") {
        let spec = &deployment["spec"];
        let pod = &spec["template"]["spec"];
        let containers = ringgate_containers(pod);
        if containers.is_empty() {
            continue;
        }
        let what = format!("{file}: Deployment {}", name(deployment));
        let replicas = spec["replicas"].as_u64().unwrap_or(1);
        assert!(replicas >= 2, "{what}: {replicas} replicas");

        // A PodDisruptionBudget over its pods that keeps one and lets one go.
        let labels = &spec["template"]["metadata"]["labels"];
        let pdbs: Vec<_> = kind(&docs, "PodDisruptionBudget")
            .into_iter()
            .filter(|(_, p)| selects(&p["spec"]["selector"], labels))
            .collect();
        assert_eq!(pdbs.len(), 1, "{what}: PodDisruptionBudgets: {pdbs:?}");
        let budget = &pdbs[0].1["spec"];
        match (
            budget["minAvailable"].as_u64(),
            budget["maxUnavailable"].as_u64(),
        ) {
            (Some(min), None) => assert!(
                (1..replicas).contains(&min),
                "{what}: minAvailable {min} of {replicas}"
            ),
            (None, Some(max)) => assert!(
                (1..replicas).contains(&max),
                "{what}: maxUnavailable {max} of {replicas}"
            ),
            other => panic!("{what}: PodDisruptionBudget {other:?}"),
        }

        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        for c in containers {
            let cwhat = format!("{what} container {}", c["name"]);
            let probe = &c["readinessProbe"]["httpGet"];
            assert_eq!(probe["path"], "/health", "{cwhat}: readiness {probe}");
            let port = match &probe["port"] {
                Value::String(named) => container_port(c, named),
                number => number.as_u64(),
            };
            let settings = check_config(container_config(&docs, pod, c, &cwhat), &cwhat);
            let metrics = settings.metrics.addr().expect("metrics served").port();
            assert_eq!(
                port,
                Some(u64::from(metrics)),
                "{cwhat}: readiness not on {metrics}"
            );

            let pre_stop = &c["lifecycle"]["preStop"];
            let pause = pre_stop["sleep"]["seconds"]
                .as_u64()
                .unwrap_or_else(|| panic!("{cwhat}: preStop {pre_stop}: expected a sleep"));
            assert!(pause >= 1, "{cwhat}: preStop sleeps {pause} s");
            let needed = Duration::from_secs(pause) + settings.timeouts.drain + DRAIN_GRACE;
            assert!(
                Duration::from_secs(grace) > needed,
                "{cwhat}: terminationGracePeriodSeconds {grace} is not above preStop {pause} s \
                 + drain {:?} + {DRAIN_GRACE:?}",
                settings.timeouts.drain
            );
        }
    }
}
