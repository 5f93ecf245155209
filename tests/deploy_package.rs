//! Checks the install paths' inputs without building them (CI builds and runs them: `.ci/run`
//! step 7, `.ci/test-deb.sh` and `.ci/test-image.sh`):
//! - the Debian package's metadata (`[package.metadata.deb]` in Cargo.toml, read by
//!   `cargo deb`): every asset exists, every systemd unit in `deploy/systemd/` is installed to
//!   `/lib/systemd/system/`, the binary to `/usr/bin/`, the units' config to
//!   `/etc/ringgate/ringgate.toml` as a conffile;
//! - the configs that the package and the image install pass `ringgate --check-config`; the
//!   package's has no listeners (the socket units hold the sockets) and the image's listens on
//!   every address on the default ports.
//!
//! Run: `cargo test --test deploy_package`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ringgate::Settings;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `[package.metadata.deb]` of Cargo.toml.
fn deb_metadata() -> toml::Table {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb] in Cargo.toml")
        .clone()
}

/// (source, destination) of each asset file, the destination a full path (a directory
/// destination, ending in '/', gets the source's file name). A source `DIR/*SUFFIX` (the only
/// glob used) stands for every file of DIR whose name ends in SUFFIX.
fn assets() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for asset in deb_metadata()["assets"].as_array().unwrap() {
        let asset = asset.as_array().unwrap();
        let (src, dest) = (asset[0].as_str().unwrap(), asset[1].as_str().unwrap());
        let sources = match src.split_once("/*") {
            Some((dir, suffix)) => {
                let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| n.ends_with(suffix))
                    .map(|n| format!("{dir}/{n}"))
                    .collect();
                names.sort();
                assert!(!names.is_empty(), "asset {src} matches no file");
                names
            }
            None => vec![src.to_owned()],
        };
        for src in sources {
            let dest = if dest.ends_with('/') {
                let name = Path::new(&src).file_name().unwrap().to_str().unwrap();
                format!("/{dest}{name}")
            } else {
                format!("/{dest}")
            };
            out.push((src, dest));
        }
    }
    out
}

/// `ringgate --check-config --config FILE`: the effective settings it prints.
fn check_config(file: &Path) -> Settings {
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .arg("--check-config")
        .arg("--config")
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Settings::from_toml(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn the_package_installs_the_binary_every_unit_and_the_config() {
    let assets = assets();
    for (src, _) in &assets {
        // The binary is built by `cargo deb` itself.
        if src != "target/release/ringgate" {
            assert!(root().join(src).is_file(), "asset {src} does not exist");
        }
    }
    let installs = |src: &str, dest: &str| assets.iter().any(|(s, d)| s == src && d == dest);
    assert!(installs("target/release/ringgate", "/usr/bin/ringgate"));
    assert!(installs(
        "deploy/systemd/ringgate.toml",
        "/etc/ringgate/ringgate.toml"
    ));
    assert!(installs(
        "deploy/ringgate.example.toml",
        "/usr/share/doc/ringgate/ringgate.example.toml"
    ));
    let mut units = 0;
    for entry in std::fs::read_dir(root().join("deploy/systemd")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".service") || name.ends_with(".socket") {
            let src = format!("deploy/systemd/{name}");
            let dest = format!("/lib/systemd/system/{name}");
            assert!(installs(&src, &dest), "{src} is not installed as {dest}");
            units += 1;
        }
    }
    assert!(units >= 3, "the service and its two socket units");
    let conffiles = deb_metadata()["conf-files"].clone();
    assert!(
        conffiles
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str() == Some("/etc/ringgate/ringgate.toml")),
        "conf-files: {conffiles}"
    );
}

#[test]
fn the_packaged_config_leaves_the_sockets_to_the_socket_units() {
    let settings = check_config(&root().join("deploy/systemd/ringgate.toml"));
    assert!(settings.listeners.fastcgi.is_empty() && settings.listeners.scgi.is_empty());
    assert_eq!(
        settings.metrics.addr(),
        Some("127.0.0.1:9500".parse().unwrap()),
        "the metrics stay on loopback"
    );
}

#[test]
fn the_image_config_listens_on_every_address_on_the_default_ports() {
    let settings = check_config(&root().join("deploy/container/ringgate.toml"));
    let addrs = |list: &[ringgate::settings::ListenAddr]| -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    };
    assert_eq!(addrs(&settings.listeners.fastcgi), ["0.0.0.0:9000"]);
    assert_eq!(addrs(&settings.listeners.scgi), ["0.0.0.0:9001"]);
    assert_eq!(
        settings.metrics.addr(),
        Some("0.0.0.0:9500".parse().unwrap())
    );
}
