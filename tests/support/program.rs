//! Starting a program other than the `ringgate` binary that takes its options: the
//! examples (`examples/*.rs`), found next to the test binary and built when missing.

use std::path::PathBuf;
use std::process::Command;

use super::Server;

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
        Self::spawn(program, io, extra, None)
    }
}
