//! Small FastCGI and SCGI servers for the tests and the `demo_server` example: a correct one
//! that serves the demo application's paths, and deliberately broken ones. The FastCGI
//! records are read and written here by hand (not with ringgate's codec), so the generator
//! is checked against an independent implementation. Blocking std sockets, a thread per
//! connection; servers live until the process ends.
#![allow(dead_code)] // reason: each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a FastCGI test server answers every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Correct responses (odd padding, a STDERR record, split STDOUT records).
    Correct,
    /// Every response record carries the request id plus one.
    WrongId,
    /// Head and half the body in whole STDOUT records, then close (no END_REQUEST).
    TruncateStdout,
    /// The whole STDOUT stream, never END_REQUEST; the connection stays open.
    NoEndRequest,
    /// A STDOUT record header announcing more bytes than are sent, then close.
    CloseMidResponse,
    /// The whole STDOUT stream, then close without END_REQUEST.
    MissingEndRequest,
    /// Correct framing, but one body byte is wrong.
    CorruptBody,
    /// `Content-Length` announces one byte more than the body has.
    ShortBody,
    /// END_REQUEST with FCGI_OVERLOADED and nothing else.
    Overloaded,
    /// Correct, but the `nth` request (1-based, over the server's life) waits `ms` first.
    StallOnce {
        /// Which request stalls.
        nth: u64,
        /// For how long.
        ms: u64,
    },
}

const BEGIN_REQUEST: u8 = 1;
const ABORT_REQUEST: u8 = 2;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;

/// One record; the padding is deliberately not always 8-byte aligning (any is legal).
fn record(out: &mut Vec<u8>, ty: u8, id: u16, content: &[u8]) {
    let pad = (content.len() % 7) as u8;
    out.extend_from_slice(&[1, ty]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[pad, 0]);
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0u8, usize::from(pad)));
}

fn stream_records(out: &mut Vec<u8>, ty: u8, id: u16, data: &[u8]) {
    for chunk in data.chunks(65535) {
        record(out, ty, id, chunk);
    }
}

fn end_request(out: &mut Vec<u8>, id: u16, protocol_status: u8) {
    record(
        out,
        END_REQUEST,
        id,
        &[0, 0, 0, 0, protocol_status, 0, 0, 0],
    );
}

/// Decodes FastCGI name-value pairs.
fn pairs(mut b: &[u8]) -> HashMap<String, String> {
    fn len(b: &mut &[u8]) -> Option<usize> {
        let first = *b.first()?;
        if first < 128 {
            *b = &b[1..];
            Some(usize::from(first))
        } else {
            let v = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) & 0x7fff_ffff;
            *b = &b[4..];
            Some(v as usize)
        }
    }
    let mut m = HashMap::new();
    while !b.is_empty() {
        let (Some(n), Some(v)) = (len(&mut b), len(&mut b)) else {
            break;
        };
        if b.len() < n + v {
            break;
        }
        m.insert(
            String::from_utf8_lossy(&b[..n]).into_owned(),
            String::from_utf8_lossy(&b[n..n + v]).into_owned(),
        );
        b = &b[n + v..];
    }
    m
}

/// What the demo application answers: status, extra headers, body parts, delay first.
pub struct AppResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub parts: Vec<Vec<u8>>,
    pub delay: Duration,
    pub part_delay: Duration,
}

/// The demo application's contract (GET /hello, POST /echo, GET /stream, /status/NNN,
/// /slow, /env).
pub fn app(vars: &HashMap<String, String>, body: &[u8]) -> AppResponse {
    let method = vars
        .get("REQUEST_METHOD")
        .map(String::as_str)
        .unwrap_or("GET");
    let uri = vars.get("REQUEST_URI").cloned().unwrap_or_default();
    let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
    let q = |name: &str| -> u64 {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    let text = |status, body: &str| AppResponse {
        status,
        content_type: "text/plain",
        parts: vec![body.as_bytes().to_vec()],
        delay: Duration::ZERO,
        part_delay: Duration::ZERO,
    };
    match (method, path) {
        ("GET", "/hello") => text(200, "Hello, world!\n"),
        ("POST", "/echo") => AppResponse {
            parts: vec![body.to_vec()],
            content_type: "application/octet-stream",
            ..text(200, "")
        },
        ("GET", "/stream") => AppResponse {
            parts: (0..q("chunks"))
                .map(|k| vec![b'a' + (k % 26) as u8; q("size") as usize])
                .collect(),
            content_type: "application/octet-stream",
            part_delay: Duration::from_millis(q("delay_ms")),
            ..text(200, "")
        },
        ("GET", "/slow") => AppResponse {
            delay: Duration::from_millis(q("ms")),
            ..text(200, "slow\n")
        },
        ("GET", "/env") => {
            let mut keys: Vec<_> = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            keys.sort();
            text(200, &keys.concat())
        }
        ("GET", p) if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            text(code, &format!("status {code}\n"))
        }
        _ => text(404, "not found\n"),
    }
}

fn head(r: &AppResponse, extra: usize) -> Vec<u8> {
    let len: usize = r.parts.iter().map(Vec::len).sum::<usize>() + extra;
    format!(
        "Status: {} Test\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\r\n",
        r.status, r.content_type
    )
    .into_bytes()
}

trait Conn: Read + Write + Send + 'static {
    fn dup(&self) -> io::Result<Box<dyn Conn>>;
    fn close(&self);
}

impl Conn for TcpStream {
    fn dup(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for UnixStream {
    fn dup(&self) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// The write side and the requests in flight, by id, with a generation so a response
/// that outlives its aborted request can never answer a later request reusing the id.
struct Shared {
    out: Mutex<(Box<dyn Conn>, HashMap<u16, u64>)>,
}

/// Starts a FastCGI server on a loopback port; returns its `fastcgi://` URL.
pub fn fastcgi_tcp(mode: Mode) -> String {
    fastcgi_at("127.0.0.1:0", mode)
}

/// Starts a FastCGI server on `addr`; returns its `fastcgi://` URL.
pub fn fastcgi_at(addr: &str, mode: Mode) -> String {
    let l = TcpListener::bind(addr).unwrap();
    let url = format!("fastcgi://{}", l.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            let count = count.clone();
            thread::spawn(move || fastcgi_conn(Box::new(c), mode, &count));
        }
    });
    url
}

/// Starts a FastCGI server on a Unix socket at `path`; returns its `fastcgi://unix:` URL.
pub fn fastcgi_unix(mode: Mode, path: &Path) -> String {
    let l = UnixListener::bind(path).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            let count = count.clone();
            thread::spawn(move || fastcgi_conn(Box::new(c), mode, &count));
        }
    });
    format!("fastcgi://unix:{}", path.display())
}

#[derive(Default)]
struct Pending {
    keep: bool,
    generation: u64,
    params: Vec<u8>,
    stdin: Vec<u8>,
}

fn fastcgi_conn(mut c: Box<dyn Conn>, mode: Mode, count: &AtomicU64) {
    let Ok(w) = c.dup() else { return };
    let shared = Arc::new(Shared {
        out: Mutex::new((w, HashMap::new())),
    });
    let mut generation = 0u64;
    let mut reqs: HashMap<u16, Pending> = HashMap::new();
    let mut head = [0u8; 8];
    loop {
        if c.read_exact(&mut head).is_err() {
            return;
        }
        let ty = head[1];
        let id = u16::from_be_bytes([head[2], head[3]]);
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let mut content = vec![0u8; len + usize::from(head[6])];
        if c.read_exact(&mut content).is_err() {
            return;
        }
        content.truncate(len);
        match ty {
            BEGIN_REQUEST => {
                let keep = content.get(2).is_some_and(|f| f & 1 == 1);
                generation += 1;
                reqs.insert(
                    id,
                    Pending {
                        keep,
                        generation,
                        ..Pending::default()
                    },
                );
                shared.out.lock().unwrap().1.insert(id, generation);
            }
            PARAMS => {
                if let Some(p) = reqs.get_mut(&id) {
                    p.params.extend_from_slice(&content);
                }
            }
            STDIN if !content.is_empty() => {
                if let Some(p) = reqs.get_mut(&id) {
                    p.stdin.extend_from_slice(&content);
                }
            }
            STDIN => {
                let Some(p) = reqs.remove(&id) else { continue };
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let vars = pairs(&p.params);
                let resp = app(&vars, &p.stdin);
                let shared = shared.clone();
                let slow = !resp.delay.is_zero() || !resp.part_delay.is_zero();
                let stall = match mode {
                    Mode::StallOnce { nth, ms } if nth == n => Duration::from_millis(ms),
                    _ => Duration::ZERO,
                };
                let req = (id, p.generation);
                if slow {
                    thread::spawn(move || respond(&shared, req, p.keep, mode, resp, stall));
                } else {
                    respond(&shared, req, p.keep, mode, resp, stall);
                }
            }
            ABORT_REQUEST => {
                let mut g = shared.out.lock().unwrap();
                if g.1.remove(&id).is_some() {
                    let mut out = Vec::new();
                    end_request(&mut out, id, 0);
                    let _ = g.0.write_all(&out);
                }
            }
            _ => {}
        }
    }
}

fn respond(
    shared: &Shared,
    (id, generation): (u16, u64),
    keep: bool,
    mode: Mode,
    mut r: AppResponse,
    stall: Duration,
) {
    thread::sleep(r.delay + stall);
    let rid = if mode == Mode::WrongId {
        id.wrapping_add(1)
    } else {
        id
    };
    let mut g = shared.out.lock().unwrap();
    if g.1.get(&id) != Some(&generation) {
        return; // aborted meanwhile (the id may be in use by a later request)
    }
    g.1.remove(&id);
    let conn = &mut g.0;
    let mut out = Vec::new();
    if mode == Mode::Overloaded {
        end_request(&mut out, rid, 2);
        let _ = conn.write_all(&out);
        return;
    }
    if mode == Mode::CorruptBody {
        let total: usize = r.parts.iter().map(Vec::len).sum();
        let mut at = total / 2;
        for p in &mut r.parts {
            if at < p.len() {
                p[at] ^= 1;
                break;
            }
            at -= p.len();
        }
    }
    let h = head(&r, usize::from(mode == Mode::ShortBody));
    match mode {
        Mode::TruncateStdout => {
            stream_records(&mut out, STDOUT, rid, &h);
            let body = r.parts.concat();
            stream_records(&mut out, STDOUT, rid, &body[..body.len() / 2]);
            let _ = conn.write_all(&out);
            conn.close();
            return;
        }
        Mode::CloseMidResponse => {
            stream_records(&mut out, STDOUT, rid, &h);
            let body = r.parts.concat();
            let mut rec = Vec::new();
            record(&mut rec, STDOUT, rid, &body);
            out.extend_from_slice(&rec[..8 + body.len() / 2]);
            let _ = conn.write_all(&out);
            conn.close();
            return;
        }
        _ => {}
    }
    // A STDERR line, the head alone, then each part as its own records.
    record(&mut out, STDERR, rid, b"test server log line\n");
    record(&mut out, STDOUT, rid, &h);
    if r.part_delay.is_zero() {
        for p in &r.parts {
            stream_records(&mut out, STDOUT, rid, p);
        }
    } else {
        for p in &r.parts {
            stream_records(&mut out, STDOUT, rid, p);
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
            thread::sleep(r.part_delay);
        }
    }
    record(&mut out, STDOUT, rid, &[]);
    match mode {
        Mode::NoEndRequest => {
            let _ = conn.write_all(&out);
        }
        Mode::MissingEndRequest => {
            let _ = conn.write_all(&out);
            conn.close();
        }
        _ => {
            end_request(&mut out, rid, 0);
            let _ = conn.write_all(&out);
            if !keep {
                conn.close();
            }
        }
    }
}

/// Starts an SCGI server on a loopback port; returns its `scgi://` URL.
pub fn scgi_tcp() -> String {
    scgi_at("127.0.0.1:0")
}

/// Starts an SCGI server on `addr`; returns its `scgi://` URL.
pub fn scgi_at(addr: &str) -> String {
    let l = TcpListener::bind(addr).unwrap();
    let url = format!("scgi://{}", l.local_addr().unwrap());
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            thread::spawn(move || scgi_conn(c));
        }
    });
    url
}

fn scgi_conn(mut c: TcpStream) {
    let mut len = 0usize;
    let mut b = [0u8; 1];
    loop {
        if c.read_exact(&mut b).is_err() {
            return;
        }
        match b[0] {
            b':' => break,
            d @ b'0'..=b'9' => len = len * 10 + usize::from(d - b'0'),
            _ => return,
        }
    }
    let mut header = vec![0u8; len + 1];
    if c.read_exact(&mut header).is_err() || header[len] != b',' {
        return;
    }
    let fields: Vec<&[u8]> = header[..len].split(|&b| b == 0).collect();
    let mut vars = HashMap::new();
    for kv in fields.chunks(2) {
        if let [k, v] = kv {
            vars.insert(
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            );
        }
    }
    let cl: usize = vars
        .get("CONTENT_LENGTH")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; cl];
    if c.read_exact(&mut body).is_err() {
        return;
    }
    let r = app(&vars, &body);
    thread::sleep(r.delay);
    let mut out = head(&r, 0);
    for p in &r.parts {
        out.extend_from_slice(p);
    }
    let _ = c.write_all(&out);
    let _ = c.shutdown(Shutdown::Write);
    // Drain until the client closes so no unread byte turns the close into a reset.
    let _ = io::copy(&mut c, &mut io::sink());
}
