//! A `ringgate` process started with any arguments and followed through its log lines (for
//! startup errors, signals and exit statuses), plus a seccomp filter that makes
//! `io_uring_setup` fail the way Docker's default profile does.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for ringgate to report "ready" or exit.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

// The seccomp filter and the io_uring expectation, shared with the runtime's unit tests.
#[path = "../../src/rt/tests/support.rs"]
mod seccomp;
#[allow(unused_imports)] // Each test binary uses a different part of the harness.
pub(crate) use seccomp::{deny_io_uring_setup, uring_expected};

/// A running `ringgate`.
pub struct Process {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

/// The outcome of starting `ringgate`.
pub enum Started {
    Ready(Process),
    Exited {
        status: ExitStatus,
        log: Vec<String>,
    },
}

impl Started {
    pub fn ready(self) -> Process {
        match self {
            Started::Ready(s) => s,
            Started::Exited { status, log } => {
                panic!(
                    "ringgate exited ({status}) before ready:\n{}",
                    log.join("\n")
                )
            }
        }
    }

    pub fn exited(self) -> (ExitStatus, String) {
        match self {
            Started::Ready(mut s) => {
                let _ = s.child.kill();
                panic!(
                    "ringgate started but should have failed:\n{}",
                    s.log.join("\n")
                )
            }
            Started::Exited { status, log } => (status, log.join("\n")),
        }
    }
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringgate"));
    c.env("RUST_LOG", "info");
    c
}

/// Start `cmd` (stderr piped) and wait until it logs "ready" or exits.
pub fn start(mut cmd: Command) -> Started {
    cmd.stderr(Stdio::piped())
        .stdout(Stdio::null())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn ringgate");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let ready = line.contains(" ready ");
                log.push(line);
                if ready {
                    return Started::Ready(Process { child, lines, log });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                return Started::Exited { status, log };
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            // Collect what is left of the log.
            while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                log.push(line);
            }
            return Started::Exited { status, log };
        }
        assert!(
            Instant::now() < deadline,
            "ringgate not ready in time:\n{}",
            log.join("\n")
        );
    }
}

impl Process {
    /// The address logged for the listener whose name contains `needle`.
    pub fn listening(&self, needle: &str) -> String {
        self.log
            .iter()
            .filter(|l| l.contains("listening") && l.contains(needle))
            .find_map(|l| {
                let a = l.split(" addr=").nth(1)?;
                Some(a.split_whitespace().next()?.to_owned())
            })
            .unwrap_or_else(|| panic!("no listener {needle} in:\n{}", self.log.join("\n")))
    }

    /// Whether a logged line contains `s`.
    pub fn logged(&self, s: &str) -> bool {
        self.log.iter().any(|l| l.contains(s))
    }

    /// Send a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Wait for exit (at most `limit`), returning the status, the time it took and the log.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, Duration, Vec<String>) {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return (status, t.elapsed(), std::mem::take(&mut self.log));
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "ringgate did not exit within {limit:?}:\n{}",
                    self.log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends one FastCGI `GET /hello` (without KEEP_CONN) and expects the demo's answer, then
/// the server's close.
pub fn expect_fastcgi_hello(mut stream: impl Read + Write) {
    stream
        .write_all(&super::fcgi_request(1, false, "GET", "/hello", b""))
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.contains("Status: 200 OK"), "{text:?}");
    assert!(text.contains("Hello, world!"), "{text:?}");
}

/// Sends one SCGI `GET /hello` and expects the demo's answer, then the server's close.
pub fn expect_scgi_hello(mut stream: impl Read + Write) {
    let mut header = bytes::BytesMut::new();
    ringgate::proto::scgi::encode_header(
        &mut header,
        0,
        &[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/hello")],
    );
    stream.write_all(&header).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("Status: 200 OK") && text.ends_with("Hello, world!\n"),
        "{text:?}"
    );
}

/// `cmd` with the seccomp filter installed in the child before exec.
pub fn with_io_uring_denied(cmd: &mut Command, errno: i32) {
    // SAFETY: the closure only makes async-signal-safe prctl calls.
    unsafe {
        cmd.pre_exec(move || deny_io_uring_setup(errno));
    }
}
