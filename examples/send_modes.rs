//! Send-path benchmark for the io_uring backend: plain `write` vs `send(MSG_DONTWAIT)` first
//! then `write` ("direct") vs `write_fixed` (registered buffer) vs `SEND_ZC` from the heap
//! ("zc") and from a registered buffer ("zcfixed"), with tokio's epoll `write` as the
//! reference, per message size, over loopback TCP and a Unix socket pair.
//!
//! One sender thread (pinned) keeps exactly one send in flight, as a connection does; one
//! receiver thread (pinned to another core) drains with blocking `read`s into 1 MiB.
//! Every (transport, size, mode) runs once per repetition, interleaved, so slow drifts of a
//! noisy machine hit every mode alike; the report gives the median over repetitions.
//!
//! ```text
//! cargo run --release --example send_modes -- [--secs 1] [--reps 5]
//!     [--sizes 1K,4K,16K,64K,256K,1M,8M] [--modes epoll,plain,direct,fixed,zc,zcfixed]
//!     [--transports tcp,unix] [--cores 0,1] [--only MODE:SIZE:TRANSPORT] [--recv]
//! ```
//! `--only` runs a single configuration once (for `perf stat` around it). `--recv` measures
//! the receive side instead: `read` vs `read_fixed` (and tokio's `read`), `size` bytes per
//! operation, with the peer writing as fast as it can.
//!
//! SEND_ZC goes through ringgate's own zero-copy ring (`src/rt/zerocopy.rs`, compiled into
//! this program), with the copy report on: the `copied` column is the share of notifications
//! that said the kernel copied the data after all (on loopback: all of them). The zero-copy
//! modes here never fall back (as with `zerocopy_fallback_after = 0`). On a Unix socket the
//! kernel refuses SEND_ZC (EOPNOTSUPP); the row says so.

// Built as a test target (`cargo test --all-targets`) the program has no `main` to reach its
// modules' items from.
#![cfg_attr(test, allow(dead_code))]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use send::{send_direct, send_fixed, send_plain};

/// The runtime's send paths, compiled from its source (the runtime is internal to the
/// library), so the paths measured are the ones it runs.
#[allow(unreachable_pub)] // Its items are `pub` for the library it belongs to.
#[path = "../src/rt/send.rs"]
mod send;

/// The runtime's zero-copy ring, compiled from its source likewise.
#[allow(unreachable_pub)]
#[path = "../src/rt/zerocopy.rs"]
mod zerocopy;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Epoll,
    Plain,
    Fixed,
    Zc,
    ZcFixed,
    Direct,
}

impl Mode {
    fn parse(s: &str) -> Self {
        match s {
            "epoll" => Self::Epoll,
            "plain" => Self::Plain,
            "fixed" => Self::Fixed,
            "zc" => Self::Zc,
            "zcfixed" => Self::ZcFixed,
            "direct" => Self::Direct,
            _ => panic!("unknown mode {s}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Epoll => "epoll",
            Self::Plain => "plain",
            Self::Fixed => "fixed",
            Self::Zc => "zc",
            Self::ZcFixed => "zcfixed",
            Self::Direct => "direct",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Tcp,
    Unix,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Unix => "unix",
        }
    }
}

fn parse_size(s: &str) -> usize {
    let s = s.trim();
    let (n, m) = if let Some(n) = s.strip_suffix('K') {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix('M') {
        (n, 1024 * 1024)
    } else {
        (s, 1)
    };
    n.parse::<usize>().expect("size") * m
}

fn size_name(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

struct Sample {
    bytes: u64,
    ops: u64,
    secs: f64,
    cpu: f64,
    /// Zero-copy modes: notifications that said "copied", and all notifications.
    copied: (u64, u64),
    /// Zero-copy modes: the error the first send got, if the socket refused SEND_ZC.
    refused: Option<String>,
}

/// What a sender thread measured.
struct Sent {
    bytes: u64,
    ops: u64,
    secs: f64,
    copied: (u64, u64),
    refused: Option<String>,
}

fn thread_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn pin(core: usize) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if let Some(id) = ids.into_iter().find(|c| c.id == core) {
        core_affinity::set_for_current(id);
    }
}

/// The connected sender socket as an owned fd, and the receiver thread.
fn connect(
    transport: Transport,
    recv_core: usize,
) -> (std::os::fd::OwnedFd, std::thread::JoinHandle<u64>) {
    let drain = move |mut r: Box<dyn Read + Send>| {
        pin(recv_core);
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("receiver: {e}"),
            }
        }
    };
    match transport {
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let h = std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                drain(Box::new(s))
            });
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            (s.into(), h)
        }
        Transport::Unix => {
            let (a, b) = UnixStream::pair().unwrap();
            let h = std::thread::spawn(move || drain(Box::new(b)));
            (a.into(), h)
        }
    }
}

fn run_one(
    mode: Mode,
    size: usize,
    transport: Transport,
    secs: f64,
    cores: (usize, usize),
) -> Sample {
    let (fd, receiver) = connect(transport, cores.1);
    let dur = Duration::from_secs_f64(secs);
    let sender = std::thread::spawn(move || {
        pin(cores.0);
        let cpu0 = thread_cpu();
        let sent = match mode {
            Mode::Epoll => {
                let (bytes, ops, secs) = epoll_sender(fd, transport, size, dur);
                Sent {
                    bytes,
                    ops,
                    secs,
                    copied: (0, 0),
                    refused: None,
                }
            }
            _ => uring_sender(fd, transport, mode, size, dur),
        };
        (sent, thread_cpu() - cpu0)
    });
    let (sent, cpu) = sender.join().unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(got, sent.bytes, "receiver got every byte");
    Sample {
        bytes: sent.bytes,
        ops: sent.ops,
        secs: sent.secs,
        cpu,
        copied: sent.copied,
        refused: sent.refused,
    }
}

fn epoll_sender(
    fd: std::os::fd::OwnedFd,
    transport: Transport,
    size: usize,
    dur: Duration,
) -> (u64, u64, f64) {
    use tokio::io::AsyncWriteExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let buf = vec![7u8; size];
        let (mut bytes, mut ops) = (0u64, 0u64);
        let t = Instant::now();
        macro_rules! pump {
            ($s:expr) => {{
                let mut s = $s;
                while t.elapsed() < dur {
                    let mut off = 0;
                    while off < size {
                        let n = s.write(&buf[off..]).await.unwrap();
                        off += n;
                        ops += 1;
                    }
                    bytes += size as u64;
                }
                let _ = s.shutdown().await;
            }};
        }
        match transport {
            Transport::Tcp => {
                let s = TcpStream::from(fd);
                s.set_nonblocking(true).unwrap();
                pump!(tokio::net::TcpStream::from_std(s).unwrap())
            }
            Transport::Unix => {
                let s = UnixStream::from(fd);
                s.set_nonblocking(true).unwrap();
                pump!(tokio::net::UnixStream::from_std(s).unwrap())
            }
        }
        (bytes, ops, t.elapsed().as_secs_f64())
    })
}

fn uring_sender(
    fd: std::os::fd::OwnedFd,
    transport: Transport,
    mode: Mode,
    size: usize,
    dur: Duration,
) -> Sent {
    let rt = tokio_uring::Runtime::new(&tokio_uring::builder()).unwrap();
    rt.block_on(async move {
        let (mut bytes, mut ops) = (0u64, 0u64);
        let mut copied = (0u64, 0u64);
        let mut refused = None;
        let t = Instant::now();
        macro_rules! pump {
            ($s:expr) => {{
                let s = $s;
                match mode {
                    Mode::Plain => {
                        let mut buf = vec![7u8; size];
                        while t.elapsed() < dur {
                            let (r, b) = send_plain(&s, buf).await;
                            buf = b;
                            let sent = r.unwrap();
                            bytes += sent.bytes as u64;
                            ops += u64::from(sent.ops);
                        }
                    }
                    Mode::Direct => {
                        let mut buf = vec![7u8; size];
                        while t.elapsed() < dur {
                            let (r, b) = send_direct(&s, buf).await;
                            buf = b;
                            let sent = r.unwrap();
                            bytes += sent.bytes as u64;
                            ops += u64::from(sent.ops);
                        }
                    }
                    Mode::Fixed => {
                        let pool = tokio_uring::buf::fixed::FixedBufPool::new([vec![7u8; size]]);
                        pool.register().unwrap();
                        let mut buf = pool.try_next(size).unwrap();
                        while t.elapsed() < dur {
                            let (r, b) = send_fixed(&s, buf, size).await;
                            buf = b;
                            let sent = r.unwrap();
                            bytes += sent.bytes as u64;
                            ops += u64::from(sent.ops);
                        }
                    }
                    Mode::Zc | Mode::ZcFixed => {
                        let ring = zerocopy::ZcRing::new().expect("SEND_ZC");
                        let buf = bytes::Bytes::from(vec![7u8; size]);
                        if mode == Mode::ZcFixed {
                            ring.register_buffers(vec![vec![7u8; size].into_boxed_slice()])
                                .unwrap();
                        }
                        'outer: while t.elapsed() < dur {
                            let mut off = 0;
                            while off < size {
                                let r = if mode == Mode::Zc {
                                    ring.send(s.as_raw_fd(), buf.slice(off..)).await
                                } else {
                                    ring.send_fixed(s.as_raw_fd(), 0, off..size).await
                                };
                                ops += 1;
                                match r {
                                    Ok(n) => off += n,
                                    Err(e) => {
                                        refused = Some(e.to_string());
                                        break 'outer;
                                    }
                                }
                            }
                            bytes += size as u64;
                        }
                        // Every notification, so the copy report is complete.
                        while ring.in_flight() > 0 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let st = ring.stats();
                        copied = (st.copied, st.copied + st.zero_copied);
                    }
                    Mode::Epoll => unreachable!(),
                }
                s.shutdown(std::net::Shutdown::Write).unwrap();
            }};
        }
        match transport {
            Transport::Tcp => {
                let s = TcpStream::from(fd);
                s.set_nonblocking(false).unwrap();
                pump!(tokio_uring::net::TcpStream::from_std(s))
            }
            Transport::Unix => {
                let s = UnixStream::from(fd);
                s.set_nonblocking(false).unwrap();
                pump!(tokio_uring::net::UnixStream::from_std(s))
            }
        }
        Sent {
            bytes,
            ops,
            secs: t.elapsed().as_secs_f64(),
            copied,
            refused,
        }
    })
}

/// A connected pair: (the side the measured thread uses, the peer side).
fn socket_pair(transport: Transport) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    match transport {
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (a, _) = l.accept().unwrap();
            a.set_nodelay(true).unwrap();
            (a.into(), c.into())
        }
        Transport::Unix => {
            let (a, b) = UnixStream::pair().unwrap();
            (a.into(), b.into())
        }
    }
}

/// The receive-side counterpart (`--recv`): a peer thread writes 1 MiB chunks as fast as
/// it can; the measured thread reads `size` bytes per operation.
fn run_recv(
    mode: Mode,
    size: usize,
    transport: Transport,
    secs: f64,
    cores: (usize, usize),
) -> Sample {
    use std::io::Write;
    let (mine, peer) = socket_pair(transport);
    let feeder = std::thread::spawn(move || {
        pin(cores.1);
        let mut w = std::fs::File::from(peer);
        let chunk = vec![7u8; 1 << 20];
        while w.write_all(&chunk).is_ok() {}
    });
    let dur = Duration::from_secs_f64(secs);
    let reader = std::thread::spawn(move || {
        pin(cores.0);
        let cpu0 = thread_cpu();
        let (bytes, ops, secs) = match mode {
            Mode::Epoll => {
                use tokio::io::AsyncReadExt;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let s = std::fs::File::from(mine);
                    let fd: std::os::fd::OwnedFd = s.into();
                    let (mut bytes, mut ops) = (0u64, 0u64);
                    let mut buf = vec![0u8; size];
                    let t = Instant::now();
                    macro_rules! pump {
                        ($s:expr) => {{
                            let mut s = $s;
                            while t.elapsed() < dur {
                                let n = s.read(&mut buf).await.unwrap();
                                assert!(n > 0);
                                bytes += n as u64;
                                ops += 1;
                            }
                        }};
                    }
                    match transport {
                        Transport::Tcp => {
                            let s = TcpStream::from(fd);
                            s.set_nonblocking(true).unwrap();
                            pump!(tokio::net::TcpStream::from_std(s).unwrap())
                        }
                        Transport::Unix => {
                            let s = UnixStream::from(fd);
                            s.set_nonblocking(true).unwrap();
                            pump!(tokio::net::UnixStream::from_std(s).unwrap())
                        }
                    }
                    (bytes, ops, t.elapsed().as_secs_f64())
                })
            }
            _ => {
                let rt = tokio_uring::Runtime::new(&tokio_uring::builder()).unwrap();
                rt.block_on(async move {
                    let (mut bytes, mut ops) = (0u64, 0u64);
                    let t = Instant::now();
                    macro_rules! pump {
                        ($s:expr) => {{
                            let s = $s;
                            if mode == Mode::Fixed {
                                let pool =
                                    tokio_uring::buf::fixed::FixedBufPool::new([vec![0u8; size]]);
                                pool.register().unwrap();
                                let mut buf = pool.try_next(size).unwrap();
                                while t.elapsed() < dur {
                                    let (r, b) = s.read_fixed(buf).await;
                                    buf = b;
                                    let n = r.unwrap();
                                    assert!(n > 0);
                                    bytes += n as u64;
                                    ops += 1;
                                }
                            } else {
                                let mut buf = vec![0u8; size];
                                while t.elapsed() < dur {
                                    buf.clear();
                                    let (r, b) = s.read(buf).await;
                                    buf = b;
                                    let n = r.unwrap();
                                    assert!(n > 0);
                                    bytes += n as u64;
                                    ops += 1;
                                }
                            }
                        }};
                    }
                    match transport {
                        Transport::Tcp => {
                            let s = TcpStream::from(mine);
                            s.set_nonblocking(false).unwrap();
                            pump!(tokio_uring::net::TcpStream::from_std(s))
                        }
                        Transport::Unix => {
                            let s = UnixStream::from(mine);
                            s.set_nonblocking(false).unwrap();
                            pump!(tokio_uring::net::UnixStream::from_std(s))
                        }
                    }
                    (bytes, ops, t.elapsed().as_secs_f64())
                })
            }
        };
        (bytes, ops, secs, thread_cpu() - cpu0)
    });
    let (bytes, ops, secs, cpu) = reader.join().unwrap();
    feeder.join().unwrap();
    Sample {
        bytes,
        ops,
        secs,
        cpu,
        copied: (0, 0),
        refused: None,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut secs = 1.0;
    let mut reps = 5;
    let mut sizes: Vec<usize> = "1K,4K,16K,64K,256K,1M,8M"
        .split(',')
        .map(parse_size)
        .collect();
    let mut modes = vec![
        Mode::Epoll,
        Mode::Plain,
        Mode::Direct,
        Mode::Fixed,
        Mode::Zc,
        Mode::ZcFixed,
    ];
    let mut transports = vec![Transport::Tcp, Transport::Unix];
    let mut cores = (0usize, 1usize);
    let mut only: Option<String> = None;
    let mut recv = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("value");
        match a.as_str() {
            "--secs" => secs = v().parse().unwrap(),
            "--reps" => reps = v().parse().unwrap(),
            "--sizes" => sizes = v().split(',').map(parse_size).collect(),
            "--modes" => modes = v().split(',').map(Mode::parse).collect(),
            "--transports" => {
                transports = v()
                    .split(',')
                    .map(|t| {
                        if t == "unix" {
                            Transport::Unix
                        } else {
                            Transport::Tcp
                        }
                    })
                    .collect()
            }
            "--cores" => {
                let s = v();
                let (a, b) = s.split_once(',').unwrap();
                cores = (a.parse().unwrap(), b.parse().unwrap());
            }
            "--only" => only = Some(v()),
            "--recv" => recv = true,
            "--bench" => {}
            _ => panic!("unknown argument {a}"),
        }
    }
    if let Some(o) = only {
        let p: Vec<&str> = o.split(':').collect();
        let t = if p.get(2) == Some(&"unix") {
            Transport::Unix
        } else {
            Transport::Tcp
        };
        let run = if recv { run_recv } else { run_one };
        let s = run(Mode::parse(p[0]), parse_size(p[1]), t, secs, cores);
        println!(
            "{o}: {:.3} GB/s, {:.0} ops/s, {} ops, sender cpu {:.0}%",
            s.bytes as f64 / s.secs / 1e9,
            s.ops as f64 / s.secs,
            s.ops,
            100.0 * s.cpu / s.secs
        );
        return;
    }

    let mut results: Vec<((Transport, usize, Mode), Vec<Sample>)> = Vec::new();
    for rep in 0..reps {
        for &t in &transports {
            for &size in &sizes {
                for &m in &modes {
                    if recv && !matches!(m, Mode::Epoll | Mode::Plain | Mode::Fixed) {
                        continue; // receiving has no direct or zero-copy variant here
                    }
                    let s = if recv {
                        run_recv(m, size, t, secs, cores)
                    } else {
                        run_one(m, size, t, secs, cores)
                    };
                    eprintln!(
                        "rep {rep} {} {:>6} {:<7} {:7.3} GB/s{}",
                        t.name(),
                        size_name(size),
                        m.name(),
                        s.bytes as f64 / s.secs / 1e9,
                        s.refused
                            .as_deref()
                            .map(|e| format!(" (refused: {e})"))
                            .unwrap_or_default()
                    );
                    match results.iter_mut().find(|(k, _)| *k == (t, size, m)) {
                        Some((_, v)) => v.push(s),
                        None => results.push(((t, size, m), vec![s])),
                    }
                }
            }
        }
    }
    let side = if recv { "receiver" } else { "sender" };
    println!(
        "| transport | size | mode | GB/s (median) | GB/s min-max | ops/s (median) | bytes/op | {side} CPU % | {side} CPU ns/KiB | copied |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for ((t, size, m), v) in &mut results {
        if let Some(e) = v.iter().find_map(|s| s.refused.clone()) {
            println!(
                "| {} | {} | {} | refused: {e} | | | | | | |",
                t.name(),
                size_name(*size),
                m.name()
            );
            continue;
        }
        let (c, n) = v
            .iter()
            .fold((0, 0), |(c, n), s| (c + s.copied.0, n + s.copied.1));
        let copied = if n == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}% of {n}", 100.0 * c as f64 / n as f64)
        };
        let mut gbs: Vec<f64> = v.iter().map(|s| s.bytes as f64 / s.secs / 1e9).collect();
        let mut opss: Vec<f64> = v.iter().map(|s| s.ops as f64 / s.secs).collect();
        let mut cpu: Vec<f64> = v.iter().map(|s| 100.0 * s.cpu / s.secs).collect();
        let mut ns_kib: Vec<f64> = v
            .iter()
            .map(|s| s.cpu * 1e9 / (s.bytes as f64 / 1024.0))
            .collect();
        let per_op: f64 = v
            .iter()
            .map(|s| s.bytes as f64 / s.ops.max(1) as f64)
            .sum::<f64>()
            / v.len() as f64;
        let lo = gbs.iter().cloned().fold(f64::MAX, f64::min);
        let hi = gbs.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {} | {} | {:.3} | {:.3}-{:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {copied} |",
            t.name(),
            size_name(*size),
            m.name(),
            median(&mut gbs),
            lo,
            hi,
            median(&mut opss),
            per_op,
            median(&mut cpu),
            median(&mut ns_kib)
        );
    }
}
