//! The generator against a real third-party FastCGI responder: PHP-FPM (Debian's
//! `php-fpm` package). Skipped with a printed reason when no php-fpm binary is installed,
//! unless `CI=true`, where a missing php-fpm is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ringgate_load::cli::Args;
use ringgate_load::config::Invocation;
use ringgate_load::runner::{run_once, RunResult};
use ringgate_load::stats::ErrorKind;

/// How long php-fpm may take to stop its workers.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long php-fpm may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

fn find_php_fpm() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n == "php-fpm"
                    || (n.starts_with("php-fpm")
                        && n[7..].chars().all(|c| c.is_ascii_digit() || c == '.'))
            })
            .collect();
        names.sort();
        if let Some(p) = names.pop() {
            return Some(p);
        }
    }
    None
}

struct Fpm {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Fpm {
    /// SIGTERM to the master, which then stops its workers (a SIGKILL would orphan them);
    /// SIGKILL only if it has not exited within [`STOP_TIMEOUT`].
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).unwrap_or(i32::MAX);
        // SAFETY: kill(2) with our own child's pid and a standard signal touches no memory.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path) -> Fpm {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let scripts = [
        ("hello.php", "<?php echo \"Hello, world!\\n\";"),
        ("echo.php", "<?php header('Content-Type: application/octet-stream'); echo file_get_contents('php://input');"),
        ("status.php", "<?php http_response_code(503); echo \"unavailable\\n\";"),
        ("stderr.php", "<?php error_log('a line for FCGI_STDERR'); echo \"ok\\n\";"),
        ("sleep.php", "<?php usleep(300000); echo \"slept\\n\";"),
    ];
    for (name, code) in scripts {
        std::fs::write(root.join(name), code).unwrap();
    }
    let sock = dir.path().join("fpm.sock");
    let conf = dir.path().join("fpm.conf");
    let user = if unsafe_is_root() {
        "user = root\ngroup = root\n"
    } else {
        ""
    };
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {log}\ndaemonize = no\n\
             [load]\nlisten = {sock}\n{user}pm = static\npm.max_children = 4\n\
             catch_workers_output = yes\nphp_admin_value[log_errors] = On\n",
            log = dir.path().join("fpm.log").display(),
            sock = sock.display(),
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args([
            "--nodaemonize",
            "--allow-to-run-as-root",
            "-n",
            "--fpm-config",
        ])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fpm = Fpm {
        child,
        sock,
        _dir: dir,
    };
    let t0 = Instant::now();
    while std::os::unix::net::UnixStream::connect(&fpm.sock).is_err() {
        assert!(
            t0.elapsed() < START_TIMEOUT,
            "php-fpm did not open {}",
            fpm.sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fpm
}

/// Whether this process runs as root (php-fpm then needs an explicit pool user).
fn unsafe_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
        .unwrap_or(false)
}

fn run(fpm: &Fpm, extra: &[&str]) -> RunResult {
    let url = format!("fastcgi://unix:{}", fpm.sock.display());
    let root = fpm.sock.parent().unwrap().join("www");
    let root = root.to_str().unwrap().to_owned();
    let mut argv = vec![
        "ringgate-load",
        "--target",
        &url,
        "--quiet",
        "--document-root",
        &root,
    ];
    argv.extend_from_slice(extra);
    let inv = Invocation::from_args(&Args::try_parse_from(argv).unwrap()).unwrap();
    run_once(&Arc::new(inv.plan), &inv.target, false).unwrap()
}

#[test]
fn php_fpm() {
    let Some(bin) = find_php_fpm() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but no php-fpm binary is installed (apt-get install php-fpm)");
        }
        println!(
            "SKIPPED php_fpm: no php-fpm binary on PATH or in /usr/sbin (apt-get install php-fpm)"
        );
        return;
    };
    let fpm = start(&bin);

    let r = run(&fpm, &["-n", "200", "-c", "4", "-k", "-u", "/hello.php"]);
    assert_eq!(r.stats.ok, 200, "{:?}", r.stats.errors);
    assert_eq!(r.stats.status_counts(), vec![(200, 200)]);
    assert_eq!(r.stats.body_bytes, 200 * 14);
    assert_eq!(r.stats.connections, 4);

    let r = run(&fpm, &["-n", "40", "-c", "2", "-u", "/hello.php"]);
    assert_eq!(
        (r.stats.ok, r.stats.connections),
        (40, 40),
        "{:?}",
        r.stats.errors
    );

    let r = run(
        &fpm,
        &[
            "-n",
            "20",
            "-c",
            "2",
            "-k",
            "-u",
            "/echo.php",
            "--body-size",
            "150000",
        ],
    );
    assert_eq!(r.stats.ok, 20, "{:?}", r.stats.errors);
    assert_eq!(r.stats.body_bytes, 20 * 150_000);

    let r = run(&fpm, &["-n", "10", "-c", "1", "-k", "-u", "/status.php"]);
    assert_eq!(r.stats.status_counts(), vec![(503, 10)]);

    let r = run(&fpm, &["-n", "10", "-c", "1", "-k", "-u", "/stderr.php"]);
    assert_eq!(r.stats.ok, 10, "{:?}", r.stats.errors);
    assert!(
        r.stats.stderr_bytes >= 10 * 21,
        "stderr {}",
        r.stats.stderr_bytes
    );

    let r = run(&fpm, &["-n", "5", "-c", "1", "-k", "-u", "/missing.php"]);
    assert_eq!(
        r.stats.status_counts(),
        vec![(404, 5)],
        "{:?}",
        r.stats.errors
    );

    // PHP-FPM does not act on ABORT_REQUEST while the script runs: it finishes the script
    // and ends the request. With one connection per request every abort is answered.
    let abort = [
        "-n",
        "4",
        "-c",
        "2",
        "-s",
        "abort",
        "-u",
        "/sleep.php",
        "--abort-after",
        "20ms",
    ];
    let r = run(&fpm, &abort);
    assert_eq!(
        (r.stats.scenario.aborts_sent, r.stats.scenario.aborts_ended),
        (4, 4),
        "{:?}",
        r.stats.errors
    );
    assert_eq!((r.stats.ok, r.stats.total_errors()), (0, 0));
    // With keep-conn it then reads the ABORT_REQUEST where it expects the next
    // BEGIN_REQUEST and drops the connection: the request sent next on it fails at the
    // connection level (reset or close), never with a protocol error.
    let r = run(&fpm, &[&abort[..], &["-k"]].concat());
    let s = &r.stats;
    assert_eq!(
        s.scenario.aborts_sent,
        s.scenario.aborts_ended + s.scenario.aborts_closed
    );
    assert_eq!(s.total_requests(), 4);
    let conn_level = s.error_count(ErrorKind::Io) + s.error_count(ErrorKind::ClosedBeforeResponse);
    assert_eq!(s.total_errors(), conn_level, "{:?}", s.errors);
    println!(
        "php-fpm, abort with keep-conn: {} aborts ended, {} requests failed at the connection level",
        s.scenario.aborts_ended, conn_level
    );

    let r = run(
        &fpm,
        &[
            "-n",
            "8",
            "-c",
            "2",
            "-k",
            "-s",
            "half-close",
            "-u",
            "/hello.php",
        ],
    );
    assert_eq!(
        (r.stats.ok, r.stats.scenario.half_closes),
        (8, 8),
        "{:?}",
        r.stats.errors
    );
}
