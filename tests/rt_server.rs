//! The `ringgate` binary's runtime: listeners on both backends, startup errors, stale Unix
//! sockets, SIGTERM, systemd socket activation, and io_uring being unavailable.

mod support;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use support::process::{
    bin, expect_fastcgi_hello, expect_scgi_hello, start, uring_expected, with_io_uring_denied,
};
use support::temp_dir;

/// SIGTERM with nothing in flight must end the process this fast.
const QUICK_EXIT: Duration = Duration::from_secs(3);

fn serve_both_kinds(io: &str) {
    let dir = temp_dir(&format!("both-{io}"));
    let sock = dir.path().join("scgi.sock");
    let mut cmd = bin();
    cmd.args([
        "--io",
        io,
        "--workers",
        "2",
        "--no-metrics",
        "--fastcgi",
        "127.0.0.1:0",
    ])
    .arg("--scgi")
    .arg(format!("unix:{}", sock.display()));
    let server = start(cmd).ready();
    let want = if io == "epoll" {
        "uring=0 epoll=2"
    } else {
        "uring=2 epoll=0"
    };
    if io == "epoll" || uring_expected() {
        assert!(server.logged(want), "{}", server.log.join("\n"));
    }
    let tcp = server.listening("fastcgi");
    // Enough connections that both workers' reuseport sockets get some.
    for _ in 0..20 {
        expect_fastcgi_hello(TcpStream::connect(&tcp).unwrap());
        expect_scgi_hello(UnixStream::connect(&sock).unwrap());
    }
    server.signal(libc::SIGTERM);
    let (status, took, log) = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    assert!(took < QUICK_EXIT, "exit took {took:?}");
    assert!(!sock.exists(), "socket file removed on exit");
    assert!(TcpStream::connect(&tcp).is_err(), "port released");
}

#[test]
fn serves_tcp_and_unix_on_uring() {
    serve_both_kinds("uring");
}

#[test]
fn serves_tcp_and_unix_on_epoll() {
    serve_both_kinds("epoll");
}

#[test]
fn sigint_also_drains_and_exits_zero() {
    let mut cmd = bin();
    cmd.args(["--workers", "1", "--no-metrics", "--fastcgi", "127.0.0.1:0"]);
    let server = start(cmd).ready();
    server.signal(libc::SIGINT);
    let (status, took, log) = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    assert!(took < QUICK_EXIT, "exit took {took:?}");
}

#[test]
fn port_in_use_is_a_clear_startup_error() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    for io in ["uring", "epoll"] {
        let mut cmd = bin();
        cmd.args([
            "--io",
            io,
            "--workers",
            "2",
            "--no-metrics",
            "--fastcgi",
            &addr,
        ]);
        let (status, log) = start(cmd).exited();
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(
            log.contains(&format!(
                "fastcgi:{addr}: address already in use by another process"
            )),
            "{log}"
        );
        assert!(!log.contains(" ready "), "{log}");
    }
}

#[test]
fn stale_unix_socket_is_replaced() {
    let dir = temp_dir("stale");
    let sock = dir.path().join("f.sock");
    drop(UnixListener::bind(&sock).unwrap()); // left behind, nobody listening
    let mut cmd = bin();
    cmd.args(["--workers", "1", "--no-metrics", "--socket-mode", "0600"])
        .arg("--fastcgi")
        .arg(format!("unix:{}", sock.display()));
    let server = start(cmd).ready();
    assert!(server.logged("removing stale socket file"));
    expect_fastcgi_hello(UnixStream::connect(&sock).unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(10)).0.code(), Some(0));
}

#[test]
fn live_unix_socket_and_plain_file_are_refused() {
    let dir = temp_dir("live");
    let sock = dir.path().join("f.sock");
    let _live = UnixListener::bind(&sock).unwrap();
    let mut cmd = bin();
    cmd.args(["--workers", "1", "--no-metrics"])
        .arg("--fastcgi")
        .arg(format!("unix:{}", sock.display()));
    let (status, log) = start(cmd).exited();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("a live socket is already listening there"),
        "{log}"
    );
    assert!(sock.exists(), "the live socket's file is untouched");

    let file = dir.path().join("notasocket");
    std::fs::write(&file, b"keep me").unwrap();
    let mut cmd = bin();
    cmd.args(["--workers", "1", "--no-metrics"])
        .arg("--scgi")
        .arg(format!("unix:{}", file.display()));
    let (status, log) = start(cmd).exited();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("exists and is not a socket"), "{log}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn bad_configuration_exits_with_usage_status() {
    let mut cmd = bin();
    cmd.args(["--workers", "0", "--no-metrics"]);
    let (status, log) = start(cmd).exited();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("workers = 0"), "{log}");
}

/// Put `fds` at 3, 4, ... in the child (as systemd does) and run ringgate through `sh` so
/// LISTEN_PID can be the pid that execs ringgate.
fn socket_activated(fds: Vec<i32>, names: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS={} LISTEN_FDNAMES={names} exec \"$0\" \"$@\"",
            fds.len()
        ))
        .arg(env!("CARGO_BIN_EXE_ringgate"))
        .args(args)
        .env("RUST_LOG", "info");
    // SAFETY: only dup/dup2/fcntl between fork and exec (async-signal-safe), no allocation.
    unsafe {
        cmd.pre_exec(move || {
            // First move every source above the target range, then into place, so a source
            // that already sits at 3 or 4 is not overwritten before it is copied.
            let mut high = [0i32; 8];
            for (i, fd) in fds.iter().enumerate() {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high[i] = h;
            }
            for (i, h) in high.iter().take(fds.len()).enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn systemd_sockets_are_used_and_left_open() {
    for io in ["uring", "epoll"] {
        let dir = temp_dir(&format!("sd-{io}"));
        let path = dir.path().join("scgi.sock");
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        let unix = UnixListener::bind(&path).unwrap();
        let cmd = socket_activated(
            vec![tcp.as_raw_fd(), unix.as_raw_fd()],
            "fastcgi:scgi",
            &["--io", io, "--workers", "2", "--no-metrics"],
        );
        let server = start(cmd).ready();
        assert!(server.logged("fastcgi(fd 3)"), "{}", server.log.join("\n"));
        assert!(server.logged("scgi(fd 4)"), "{}", server.log.join("\n"));
        assert!(
            !server.logged("using the defaults"),
            "no default listeners beside inherited ones"
        );
        for _ in 0..10 {
            expect_fastcgi_hello(TcpStream::connect(tcp_addr).unwrap());
            expect_scgi_hello(UnixStream::connect(&path).unwrap());
        }
        server.signal(libc::SIGTERM);
        let (status, _, log) = server.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
        // systemd keeps its sockets: still listening (connections queue in the backlog),
        // and the Unix socket file is not removed.
        assert!(
            TcpStream::connect(tcp_addr).is_ok(),
            "inherited TCP socket still listens"
        );
        assert!(path.exists());
        assert!(UnixStream::connect(&path).is_ok());
    }
}

#[test]
fn socket_activation_with_unknown_name_is_refused() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let cmd = socket_activated(vec![tcp.as_raw_fd()], "http", &["--no-metrics"]);
    let (status, log) = start(cmd).exited();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("FileDescriptorName=fastcgi"), "{log}");
}

#[test]
fn blocked_io_uring_falls_back_in_auto_and_fails_with_io_uring() {
    let mut cmd = bin();
    cmd.args([
        "--io",
        "auto",
        "--workers",
        "2",
        "--no-metrics",
        "--fastcgi",
        "127.0.0.1:0",
    ]);
    with_io_uring_denied(&mut cmd, libc::EPERM);
    let server = start(cmd).ready();
    assert!(
        server.logged("io_uring unavailable, using epoll"),
        "{}",
        server.log.join("\n")
    );
    assert!(server.logged("uring=0 epoll=2"));
    expect_fastcgi_hello(TcpStream::connect(server.listening("fastcgi")).unwrap());
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(10)).0.code(), Some(0));

    let mut cmd = bin();
    cmd.args([
        "--io",
        "uring",
        "--workers",
        "2",
        "--no-metrics",
        "--fastcgi",
        "127.0.0.1:0",
    ]);
    with_io_uring_denied(&mut cmd, libc::EPERM);
    let (status, log) = start(cmd).exited();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("--io uring: io_uring is blocked"), "{log}");
}

#[test]
fn buffer_registration_over_memlock_limit_is_not_fatal() {
    if !uring_expected() {
        return;
    }
    let mut cmd = bin();
    cmd.args([
        "--io",
        "uring",
        "--workers",
        "1",
        "--no-metrics",
        "--fastcgi",
        "127.0.0.1:0",
    ])
    .args(["--buffers-count", "64", "--buffers-size", "64KiB"]);
    // RLIMIT_MEMLOCK is checked against the locked memory of the whole user, so when the
    // tests run as root the child becomes a user of its own: no other process can have
    // memory charged to it, and it has no CAP_IPC_LOCK to bypass the limit.
    // SAFETY: getuid has no preconditions.
    let as_root = unsafe { libc::getuid() } == 0;
    let lonely_id = 50_000 + std::process::id() % 10_000;
    // SAFETY: only setrlimit, setgroups, setgid and setuid run between fork and exec; the
    // values they use were computed before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Room for the rings (about 28 KiB each), not for 4 MiB of buffers.
            let lim = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if as_root
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(lonely_id) != 0
                    || libc::setuid(lonely_id) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = start(cmd).ready();
    assert!(
        server.logged("registered buffers unavailable"),
        "{}",
        server.log.join("\n")
    );
    assert!(server.logged("uring=1"), "{}", server.log.join("\n"));
    expect_fastcgi_hello(TcpStream::connect(server.listening("fastcgi")).unwrap());
    server.signal(libc::SIGTERM);
    let (status, _, log) = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
}

#[test]
fn service_manager_hears_ready_and_stopping() {
    let dir = temp_dir("notify");
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = bin();
    cmd.args(["--io", "epoll", "--workers", "1", "--no-metrics"])
        .args(["--fastcgi", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path);
    let server = start(cmd).ready();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        ready.starts_with("READY=1\nSTATUS=ready: 1 workers"),
        "{ready:?}"
    );
    server.signal(libc::SIGTERM);
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=draining\n");
    let (status, _, log) = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
}

#[test]
fn check_config_prints_the_effective_settings() {
    let dir = temp_dir("check-config");
    let file = dir.path().join("ringgate.toml");
    std::fs::write(&file, "workers = 3\n[limits]\nmax_headers = 7\n").unwrap();
    let out = bin()
        .args(["--check-config", "--config"])
        .arg(&file)
        .args(["--max-in-flight", "99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8(out.stdout).unwrap();
    let settings = ringgate::Settings::from_toml(&printed).unwrap();
    assert_eq!(settings.workers, 3);
    assert_eq!(settings.limits.max_headers, 7);
    assert_eq!(settings.limits.max_in_flight, 99);
    assert_eq!(
        settings.timeouts,
        ringgate::channel::Timeouts::default(),
        "{printed}"
    );
    std::fs::write(&file, "[limits]\nmax_headers = 0\n").unwrap();
    let out = bin()
        .args(["--check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("max_headers"), "{err}");
}
