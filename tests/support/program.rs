//! Starting a program other than the `ringgate` binary that takes its options: the
//! examples (`examples/*.rs`), found next to the test binary and built when missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{free_port, temp_dir, Server};

/// The path of example `name`, built (with every feature) first: `cargo test` builds the
/// examples, but `cargo test --test NAME` does not, and a stale one would be tested.
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    let path = profile_dir.join("examples").join(name);
    // One build per example and test binary, one at a time.
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--all-features", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
        built.push(name.to_owned());
    }
    path
}

impl Server {
    /// Like [`Server::start`], with `program` instead of the `ringgate` binary.
    pub fn start_program(program: &std::path::Path, io: &str, extra: &[&str]) -> Server {
        let dir = temp_dir(&format!("{io}-{}", free_port()));
        let (fastcgi, scgi, metrics) = (free_port(), free_port(), free_port());
        let log = dir.join("server.log");
        let mut cmd = Command::new(program);
        cmd.args(["--io", io, "--workers", "2"])
            .args(["--fastcgi", &format!("127.0.0.1:{fastcgi}")])
            .args(["--scgi", &format!("127.0.0.1:{scgi}")])
            .arg("--fastcgi")
            .arg(format!("unix:{}", dir.join("fcgi.sock").display()))
            .arg("--scgi")
            .arg(format!("unix:{}", dir.join("scgi.sock").display()))
            .args(["--metrics", &format!("127.0.0.1:{metrics}")])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("server.err")).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let server = Server {
            child,
            fastcgi,
            scgi,
            metrics,
            dir,
            log,
        };
        server.wait_ready();
        server
    }
}
