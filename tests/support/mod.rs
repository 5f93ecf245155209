//! The one test harness: start the real `ringgate` binary (here, waiting for its listeners;
//! [`process`], following its log and exit status) or an example ([`program`]), put a front
//! end before it ([`frontend`]), and talk to it with small blocking FastCGI and SCGI clients
//! built on ringgate's own codecs (the wire bytes are checked by the engine tests and by real
//! front ends elsewhere).
#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod frontend;
pub mod process;
pub mod program;

/// `both_backends!(test_fn, ...)`: one `#[test]` per function and backend, in modules `uring`
/// and `epoll`, each calling `test_fn("uring")` or `test_fn("epoll")`.
#[allow(unused_macros)] // Only the test binaries that run on both backends use it.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod uring {
            $(#[test] fn $name() { super::$name("uring") })*
        }
        mod epoll {
            $(#[test] fn $name() { super::$name("epoll") })*
        }
    };
}

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringgate::proto::cgi::parse_response_head;
use ringgate::proto::fastcgi::record::encode_record;
use ringgate::proto::fastcgi::{
    encode_request, EndRequest, ProtocolStatus, Record, RecordDecoder, RecordType, Role,
    FLAG_KEEP_CONN,
};

/// A free loopback TCP port (bound once, then released for the server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `len` bytes of a xorshift stream from `seed`: a body that repeats nowhere within itself,
/// so a byte out of place, lost or doubled shows in a comparison.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A fresh temporary directory for Unix sockets (a short path under /tmp), removed when the
/// guard drops.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ringgate-test-{name}-"))
        .tempdir()
        .unwrap()
}

/// Raises this process's open-file limit to its hard limit (for many-connection tests).
pub fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A running `ringgate` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub fastcgi: u16,
    pub scgi: u16,
    pub metrics: u16,
    /// The server's scratch directory (its Unix sockets, logs): `_tmp`'s path.
    pub dir: PathBuf,
    pub log: PathBuf,
    /// Removes `dir` when the server is dropped, after the process is killed.
    _tmp: tempfile::TempDir,
}

impl Server {
    /// Starts ringgate with one TCP FastCGI, one TCP SCGI, one Unix FastCGI and one Unix SCGI
    /// listener, the metrics endpoint, `io` as backend and `extra` arguments; waits until
    /// every listener accepts.
    pub fn start(io: &str, extra: &[&str]) -> Server {
        Self::start_with(io, extra, None)
    }

    /// [`Server::start`] with the server's open-file limit set to `nofile` (soft and hard).
    pub fn start_with(io: &str, extra: &[&str], nofile: Option<u64>) -> Server {
        Self::spawn(
            std::path::Path::new(env!("CARGO_BIN_EXE_ringgate")),
            io,
            extra,
            nofile,
        )
    }

    /// Starts `program` (the `ringgate` binary, or a program that takes its options) as
    /// [`Server::start_with`] describes. The ports are picked free just before the start, so
    /// another test may take one in between: a server that exits before it is ready is
    /// started again on other ports (three tries).
    pub fn spawn(
        program: &std::path::Path,
        io: &str,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> Server {
        let mut attempt = 1;
        loop {
            let mut server = Self::spawn_once(program, io, extra, nofile);
            match server.wait_ready() {
                Ok(()) => return server,
                Err(why) if attempt < 3 => eprintln!("retrying the server's start: {why}"),
                Err(why) => panic!("{why}"),
            }
            attempt += 1;
        }
    }

    fn spawn_once(
        program: &std::path::Path,
        io: &str,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> Server {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = temp_dir(&format!("{io}-{n}"));
        let dir = tmp.path().to_path_buf();
        let (fastcgi, scgi, metrics) = (free_port(), free_port(), free_port());
        let log = dir.join("server.log");
        let mut cmd = Command::new(program);
        cmd.args(["--io", io]);
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", "2"]);
        }
        cmd.args(["--fastcgi", &format!("127.0.0.1:{fastcgi}")])
            .args(["--scgi", &format!("127.0.0.1:{scgi}")])
            .args([
                "--fastcgi",
                &format!("unix:{}", dir.join("fcgi.sock").display()),
            ])
            .args([
                "--scgi",
                &format!("unix:{}", dir.join("scgi.sock").display()),
            ])
            .args(["--metrics", &format!("127.0.0.1:{metrics}")])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("server.err")).unwrap());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Server {
            child,
            fastcgi,
            scgi,
            metrics,
            dir,
            log,
            _tmp: tmp,
        }
    }

    /// Waits until every listener and the metrics endpoint accept; `Err` when the server
    /// exited first or took more than 20 s.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("ringgate exited ({status}): {}", self.stderr()));
            }
            // The metrics endpoint too: it starts on a thread of its own, and a test that
            // scrapes it first thing once found it not listening yet.
            let up = TcpStream::connect(("127.0.0.1", self.fastcgi)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.scgi)).is_ok()
                && UnixStream::connect(self.fastcgi_unix()).is_ok()
                && UnixStream::connect(self.scgi_unix()).is_ok()
                && TcpStream::connect(("127.0.0.1", self.metrics)).is_ok();
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("ringgate did not start: {}", self.stderr()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn fastcgi_unix(&self) -> PathBuf {
        self.dir.join("fcgi.sock")
    }

    pub fn scgi_unix(&self) -> PathBuf {
        self.dir.join("scgi.sock")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.err")).unwrap_or_default()
    }

    pub fn fcgi(&self) -> FcgiConn<TcpStream> {
        FcgiConn::new(TcpStream::connect(("127.0.0.1", self.fastcgi)).unwrap())
    }

    pub fn fcgi_unix(&self) -> FcgiConn<UnixStream> {
        FcgiConn::new(UnixStream::connect(self.fastcgi_unix()).unwrap())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill(2) with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits for exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's resident set size in bytes (`VmRSS`).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    /// CPU time (user + system) the server used so far.
    pub fn cpu_time(&self) -> Duration {
        stat_cpu_time(&PathBuf::from(format!("/proc/{}/stat", self.child.id())))
    }

    /// The `/metrics` text.
    pub fn scrape(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

impl Server {
    /// Polls `/metrics` until `series` satisfies `ok` (metrics are recorded as events happen,
    /// a client may see its answer a moment before the server counts it); returns the scrape.
    /// Fails after 10 s.
    pub fn wait_metric(&self, series: &str, ok: impl Fn(f64) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.scrape();
            if ok(metric(&text, series)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{series} = {} never reached the expected value\n{text}",
                metric(&text, series)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One value of a scraped metric series (`name{labels}`), 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// CPU time (user + system) in a `/proc/PID/stat` or `/proc/PID/task/TID/stat` file.
pub fn stat_cpu_time(path: &std::path::Path) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// The SCGI header of a request (its CGI variables as [`params`] gives them) with a body of
/// `body_len` bytes, which the caller sends after it.
pub fn scgi_head(method: &str, uri: &str, body_len: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let vars = params(method, uri, body_len);
    let pairs: Vec<(&[u8], &[u8])> = vars
        .iter()
        .filter(|(n, _)| n != "CONTENT_LENGTH")
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    ringgate::proto::scgi::encode_header(&mut out, body_len as u64, &pairs);
    out
}

/// The nginx-like CGI variables of a request.
pub fn params(method: &str, uri: &str, body_len: usize) -> Vec<(String, String)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    vec![
        ("QUERY_STRING".into(), query.into()),
        ("REQUEST_METHOD".into(), method.into()),
        ("CONTENT_TYPE".into(), String::new()),
        (
            "CONTENT_LENGTH".into(),
            if body_len == 0 {
                String::new()
            } else {
                body_len.to_string()
            },
        ),
        ("SCRIPT_NAME".into(), path.into()),
        ("REQUEST_URI".into(), uri.into()),
        ("DOCUMENT_URI".into(), path.into()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("REMOTE_ADDR".into(), "127.0.0.1".into()),
        ("REMOTE_PORT".into(), "40000".into()),
        ("SERVER_ADDR".into(), "127.0.0.1".into()),
        ("SERVER_PORT".into(), "80".into()),
        ("SERVER_NAME".into(), "localhost".into()),
        ("HTTP_HOST".into(), "localhost".into()),
    ]
}

/// The records of one whole FastCGI request.
pub fn fcgi_request(id: u16, keep_conn: bool, method: &str, uri: &str, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let flags = if keep_conn { FLAG_KEEP_CONN } else { 0 };
    let vars = params(method, uri, body.len());
    let pairs = vars.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    encode_request(&mut out, id, Role::RESPONDER, flags, pairs, body);
    out
}

/// A FastCGI response as the client saw it.
#[derive(Debug, Default, Clone)]
pub struct FcgiResponse {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub end: Option<EndRequest>,
}

impl FcgiResponse {
    /// (status, body) of a complete response.
    pub fn http(&self) -> (u16, Vec<u8>) {
        let (head, used) = parse_response_head(&self.stdout, 1 << 20)
            .expect("valid response head")
            .expect("complete response head");
        (head.status.as_u16(), self.stdout[used..].to_vec())
    }

    pub fn complete(&self) -> bool {
        self.end
            .is_some_and(|e| e.protocol_status == ProtocolStatus::REQUEST_COMPLETE)
    }
}

/// A blocking FastCGI client connection.
pub struct FcgiConn<S> {
    pub stream: S,
    decoder: RecordDecoder,
    buf: BytesMut,
}

impl<S: Read + Write> FcgiConn<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            decoder: RecordDecoder::new(),
            buf: BytesMut::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next record, or `None` at EOF.
    pub fn record(&mut self) -> io::Result<Option<Record>> {
        loop {
            if let Some(r) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(io::Error::other)?
            {
                return Ok(Some(r));
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads records until every id in `ids` has its END_REQUEST.
    pub fn responses(&mut self, ids: &[u16]) -> std::collections::HashMap<u16, FcgiResponse> {
        let mut out: std::collections::HashMap<u16, FcgiResponse> =
            std::collections::HashMap::new();
        while ids
            .iter()
            .any(|id| out.get(id).is_none_or(|r| r.end.is_none()))
        {
            let r = self
                .record()
                .unwrap()
                .expect("connection closed before every END_REQUEST");
            let entry = out.entry(r.request_id).or_default();
            match r.record_type {
                RecordType::STDOUT => entry.stdout.extend_from_slice(&r.content),
                RecordType::STDERR => entry.stderr.extend_from_slice(&r.content),
                RecordType::END_REQUEST => entry.end = EndRequest::parse(&r.content),
                _ => {}
            }
        }
        out
    }

    /// One whole request/response on this connection.
    pub fn call(
        &mut self,
        id: u16,
        keep_conn: bool,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> FcgiResponse {
        let req = fcgi_request(id, keep_conn, method, uri, body);
        self.send(&req);
        self.responses(&[id]).remove(&id).unwrap()
    }

    /// Sends ABORT_REQUEST for `id`.
    pub fn abort(&mut self, id: u16) {
        let mut b = BytesMut::new();
        encode_record(&mut b, RecordType::ABORT_REQUEST, id, &[]);
        self.send(&b);
    }
}

/// One SCGI request on a fresh connection; returns (status, body) and whether the server
/// closed the connection after the response.
pub fn scgi_call<S: Read + Write>(
    mut stream: S,
    method: &str,
    uri: &str,
    body: &[u8],
    half_close: impl FnOnce(&S),
) -> (u16, Vec<u8>) {
    let mut out = scgi_head(method, uri, body.len());
    out.extend_from_slice(body);
    stream.write_all(&out).unwrap();
    half_close(&stream);
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let (head, used) = parse_response_head(&response, 1 << 20)
        .unwrap()
        .expect("complete head");
    (head.status.as_u16(), response[used..].to_vec())
}

/// Half-closes a TCP stream's write side.
pub fn tcp_half_close(s: &TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
}

/// Leaves the stream as it is.
pub fn no_half_close<S>(_: &S) {}

/// The bytes `/stream?chunks=N&size=S` must produce.
pub fn expected_stream(chunks: usize, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(chunks * size);
    for k in 0..chunks {
        v.extend(std::iter::repeat_n(b'a' + (k % 26) as u8, size));
    }
    v
}

/// Lines of the server's log (for diagnostics).
pub fn read_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::File::open(path)
        .map(|f| BufReader::new(f).lines().map_while(Result::ok).collect())
        .unwrap_or_default()
}
