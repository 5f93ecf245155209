//! The front-end files of `deploy/` driven as shipped, each in a network namespace of its own
//! (so the shipped ports are free and the tests can run at once): `tests/deploy/frontend.sh`
//! starts ringgate with its defaults and the front end from its deploy file, then checks a
//! GET, a 1 MiB POST echo, a 4 MiB streamed response and a client that disconnects
//! mid-response, over FastCGI and, where the front end has it, SCGI. Also the systemd units
//! under socket activation (`tests/deploy/systemd.sh`), and three instances behind the shipped
//! HAProxy and nginx pool configurations under load (`tests/deploy/pool.sh`).
//!
//! Also that requests through nginx and HAProxy, one at a time, are answered at once
//! (`frontend.sh ... latency`; those two tests run alone).
//!
//! Needs root (for `unshare --net`) and the front end; without them a test skips with a printed
//! reason, except under `CI=true`, where it fails.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::RwLock;

use support::frontend::have;

/// Whether this process may create network namespaces.
fn can_unshare() -> bool {
    let ok = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "`unshare --net` must work under CI (run the tests as root)"
        );
        eprintln!("skipping: cannot create a network namespace (not root?)");
    }
    ok
}

/// Runs `tests/deploy/SCRIPT` with the ringgate binary and `args` in a new network namespace.
fn run_in_netns(script: &str, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/deploy")
        .join(script);
    let out = Command::new("unshare")
        .arg("--net")
        .arg("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_ringgate"))
        .args(args)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{stdout}\n{stderr}",
        script.display()
    );
}

fn frontend(name: &str, program: &str) {
    let _shared = QUIET.read().unwrap_or_else(|e| e.into_inner());
    if have(program) && can_unshare() {
        run_in_netns("frontend.sh", &[name]);
    }
}

/// The latency checks run alone (a busy CPU hides a stall); the other tests share.
static QUIET: RwLock<()> = RwLock::new(());

/// Requests through `name` one at a time are answered at once (`frontend.sh ... latency`).
fn answered_at_once(name: &str, program: &str) {
    let _alone = QUIET.write().unwrap_or_else(|e| e.into_inner());
    if have(program) && can_unshare() {
        run_in_netns("frontend.sh", &[name, "latency"]);
    }
}

#[test]
fn nginx_answers_one_request_at_a_time_at_once() {
    answered_at_once("nginx", "nginx");
}

#[test]
fn haproxy_answers_one_request_at_a_time_at_once() {
    answered_at_once("haproxy", "haproxy");
}

#[test]
fn nginx_as_shipped() {
    frontend("nginx", "nginx");
}

#[test]
fn haproxy_as_shipped() {
    frontend("haproxy", "haproxy");
}

#[test]
fn apache_as_shipped() {
    frontend("apache", "apache2");
}

#[test]
fn lighttpd_as_shipped() {
    frontend("lighttpd", "lighttpd");
}

#[test]
fn caddy_as_shipped() {
    frontend("caddy", "caddy");
}

#[test]
fn systemd_units_under_socket_activation() {
    let _shared = QUIET.read().unwrap_or_else(|e| e.into_inner());
    if have("systemd-socket-activate") && have("nginx") && can_unshare() {
        run_in_netns("systemd.sh", &[]);
    }
}

/// Three instances behind HAProxy's shipped pool config, under load: one drained loses no
/// request, one killed is marked down within the health-check interval.
#[test]
fn haproxy_pool_of_three() {
    let _shared = QUIET.read().unwrap_or_else(|e| e.into_inner());
    if have("haproxy") && can_unshare() {
        run_in_netns("pool.sh", &["haproxy"]);
    }
}

/// The same with nginx's shipped pool config (passive checks, fastcgi_next_upstream).
#[test]
fn nginx_pool_of_three() {
    let _shared = QUIET.read().unwrap_or_else(|e| e.into_inner());
    if have("nginx") && can_unshare() {
        run_in_netns("pool.sh", &["nginx"]);
    }
}
