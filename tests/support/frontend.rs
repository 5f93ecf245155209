//! Front ends in front of a test server: nginx and HAProxy started from the templates in
//! `tests/frontends/`, and curl as the HTTP client. A missing program skips the test with a
//! printed reason, except under `CI=true`, where it fails.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, Server};

pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {program} || test -x /usr/sbin/{program}"),
        ])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{program} is required under CI (install it in .ci/run)"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

pub fn sbin(program: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p.display().to_string();
        }
    }
    program.to_owned()
}

/// A front end process, stopped on drop.
pub struct FrontEnd {
    pub child: Child,
    pub http: u16,
    pub dir: PathBuf,
}

impl Drop for FrontEnd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stops a front end with SIGTERM, so that its master stops its workers too (a SIGKILL
/// would leave them running, orphaned), and kills it if it is still there after 5 s.
pub fn stop(child: &mut Child) {
    // SAFETY: kill(2) with the pid of a child we spawned and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn render(template: &str, dir: &Path, vars: &[(&str, String)]) -> PathBuf {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/frontends")
            .join(template),
    )
    .unwrap();
    text = text.replace("@DIR@", &dir.display().to_string());
    for (k, v) in vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    let path = dir.join(template.trim_end_matches(".in"));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn wait_http(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn start_nginx(server: &Server) -> FrontEnd {
    let dir = server.dir.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let (http, http_scgi) = (free_port(), free_port());
    let conf = render(
        "nginx.conf.in",
        &dir,
        &[
            ("HTTP_PORT", http.to_string()),
            ("SCGI_HTTP_PORT", http_scgi.to_string()),
            ("FASTCGI", format!("127.0.0.1:{}", server.fastcgi)),
            ("SCGI", format!("127.0.0.1:{}", server.scgi)),
        ],
    );
    let child = Command::new(sbin("nginx"))
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &conf.display().to_string(),
            "-e",
            "stderr",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    wait_http(http, "nginx", &dir.join("stderr.log"));
    wait_http(http_scgi, "nginx", &dir.join("stderr.log"));
    std::fs::write(dir.join("scgi-port"), http_scgi.to_string()).unwrap();
    FrontEnd { child, http, dir }
}

pub fn start_haproxy(server: &Server) -> FrontEnd {
    let dir = server.dir.join("haproxy");
    std::fs::create_dir_all(&dir).unwrap();
    let http = free_port();
    let conf = render(
        "haproxy.cfg.in",
        &dir,
        &[
            ("HTTP_PORT", http.to_string()),
            ("FASTCGI", format!("127.0.0.1:{}", server.fastcgi)),
        ],
    );
    let child = Command::new(sbin("haproxy"))
        .args(["-db", "-f", &conf.display().to_string()])
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("start haproxy");
    wait_http(http, "haproxy", &dir.join("stderr.log"));
    FrontEnd { child, http, dir }
}

/// curl: returns (status, body).
pub fn curl(port: u16, path: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "60"])
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out.stdout.iter().rposition(|b| *b == b'\n').unwrap();
    let status = std::str::from_utf8(&out.stdout[split + 1..])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (status, out.stdout[..split].to_vec())
}
