//! Workers and the serving loop through the library API, with handlers that stand in for
//! the connection driver: every stream kind is writable, the drain waits for in-flight
//! connections up to its deadline, the connection limit holds, and startup errors reach
//! the caller.

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::rt::accept::{Accepted, Stream};
use crate::rt::backend::{Backend, IoMode};
use crate::rt::bufpool::BufPoolConfig;
use crate::rt::listener::{BindOptions, ListenAddr, ListenerProtocol, ListenerSet, ListenerSpec};
use crate::rt::serve::{serve, ConnContext, DrainReport, ServeOptions};
use crate::rt::worker::{StartError, WorkerOptions, WorkerStartError, Workers};

async fn write_all(stream: &mut Stream, data: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    match stream {
        Stream::UringTcp(s) => s.write_all(data.to_vec()).await.0.unwrap(),
        Stream::UringUnix(s) => s.write_all(data.to_vec()).await.0.unwrap(),
        Stream::Tcp(s) => s.write_all(data).await.unwrap(),
        Stream::Unix(s) => s.write_all(data).await.unwrap(),
    }
}

struct Running {
    workers: Workers,
    reports: mpsc::Receiver<DrainReport>,
    tcp: String,
    unix: std::path::PathBuf,
    _files: Vec<crate::rt::listener::UnixPathGuard>,
    /// Last: removed after the socket files in it.
    _dir: tempfile::TempDir,
}

fn run<H, F>(name: &str, io: IoMode, opts: ServeOptions, handler: H) -> Running
where
    H: Fn(Accepted, ConnContext) -> F + Copy + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + 'static,
{
    let dir = super::support::temp_dir(name);
    let unix = dir.path().join("s.sock");
    let specs = [
        ListenerSpec::new(ListenerProtocol::FastCgi, "127.0.0.1:0".parse().unwrap()),
        ListenerSpec::new(ListenerProtocol::Scgi, ListenAddr::Unix(unix.clone())),
    ];
    let set = ListenerSet::bind(&specs, 2, &BindOptions::default()).unwrap();
    let tcp = set.describe()[0].1.clone();
    let (per_worker, files) = set.split().unwrap();
    let (tx, reports) = mpsc::channel();
    let wo = WorkerOptions {
        pin: false,
        io,
        buffers: BufPoolConfig {
            count: 4,
            size: 4096,
        },
    };
    let workers = Workers::start(&wo, per_worker, move |ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(serve(ctx, opts, handler).await);
        }
    })
    .unwrap();
    Running {
        workers,
        reports,
        tcp,
        unix,
        _files: files,
        _dir: dir,
    }
}

fn finish(mut r: Running) -> (Vec<DrainReport>, Duration) {
    let t = Instant::now();
    r.workers.drain();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let panicked = rt.block_on(r.workers.all_exited());
    assert!(!panicked);
    assert!(r.workers.join_all().is_empty());
    let took = t.elapsed();
    (r.reports.try_iter().collect(), took)
}

fn read_all(mut s: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

fn every_stream_kind_is_writable(io: IoMode) {
    let r = run(
        &format!("kinds-{io}"),
        io,
        ServeOptions::default(),
        |mut c, ctx| async move {
            assert_eq!(c.stream.backend(), ctx.backend);
            let msg: &'static [u8] = match c.listener.protocol {
                ListenerProtocol::FastCgi => b"tcp",
                _ => b"unix",
            };
            write_all(&mut c.stream, msg).await;
        },
    );
    let want = if io == IoMode::Epoll {
        Backend::Epoll
    } else {
        Backend::Uring
    };
    assert!(r.workers.backends().iter().all(|b| *b == want));
    for _ in 0..10 {
        assert_eq!(read_all(TcpStream::connect(&r.tcp).unwrap()), b"tcp");
        assert_eq!(read_all(UnixStream::connect(&r.unix).unwrap()), b"unix");
    }
    let (reports, _) = finish(r);
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.cut == 0));
}

#[test]
fn every_stream_kind_is_writable_on_uring() {
    if super::support::uring_expected() {
        every_stream_kind_is_writable(IoMode::Uring);
    }
}

#[test]
fn every_stream_kind_is_writable_on_epoll() {
    every_stream_kind_is_writable(IoMode::Epoll);
}

/// A handler that, once draining starts, needs 300 ms more and then says goodbye.
async fn slow_goodbye(mut c: Accepted, mut ctx: ConnContext) {
    ctx.shutdown.draining().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_all(&mut c.stream, b"bye").await;
}

#[test]
fn drain_waits_for_in_flight_connections() {
    for io in [IoMode::Auto, IoMode::Epoll] {
        let opts = ServeOptions {
            max_connections: 100,
            drain_timeout: Duration::from_secs(10),
        };
        let r = run(&format!("drain-{io}"), io, opts, slow_goodbye);
        let tcp = TcpStream::connect(&r.tcp).unwrap();
        let unix = UnixStream::connect(&r.unix).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // accepted
        let readers = [
            std::thread::spawn(move || read_all(tcp)),
            std::thread::spawn(move || read_all(unix)),
        ];
        let (reports, took) = finish(r);
        for h in readers {
            assert_eq!(h.join().unwrap(), b"bye");
        }
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(reports.iter().all(|r| r.cut == 0), "{reports:?}");
    }
}

#[test]
fn drain_deadline_cuts_stuck_connections() {
    let opts = ServeOptions {
        max_connections: 100,
        drain_timeout: Duration::from_millis(300),
    };
    let r = run("cut", IoMode::Auto, opts, |_c, _ctx| std::future::pending());
    let c = TcpStream::connect(&r.tcp).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (reports, took) = finish(r);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.cut).sum::<usize>(),
        1,
        "{reports:?}"
    );
    // The stuck connection was closed when its worker stopped.
    assert!(read_all(c).is_empty());
}

#[test]
fn connection_limit_closes_extra_connections() {
    let opts = ServeOptions {
        max_connections: 1,
        drain_timeout: Duration::from_secs(5),
    };
    // Unix listener: shared by both workers, but each worker has its own limit of 1, so
    // the third connection must be refused whichever workers take them.
    let r = run("limit", IoMode::Auto, opts, |c, mut ctx| async move {
        ctx.shutdown.draining().await;
        drop(c);
    });
    let a = UnixStream::connect(&r.unix).unwrap();
    let b = UnixStream::connect(&r.unix).unwrap();
    let third = UnixStream::connect(&r.unix).unwrap();
    let mut held = vec![a, b, third];
    // Exactly one of the three is closed at once (the other two fill both workers).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 1];
        if let Ok(0) = s.read(&mut buf) {
            closed += 1;
        }
    }
    assert!(Instant::now() < deadline);
    let (reports, _) = finish(r);
    let rejected: u64 = reports.iter().map(|r| r.rejected).sum();
    // Both workers may race for the same shared socket, so one worker can get two of
    // the three; every connection past a worker's one is refused.
    assert!(
        closed >= 1 && closed as u64 == rejected,
        "closed {closed}, rejected {rejected}"
    );
}

#[test]
fn worker_runtime_failure_reaches_the_caller() {
    let err = std::thread::spawn(|| {
        // Threads spawned from here inherit the filter.
        super::support::deny_io_uring_setup(libc::EPERM).unwrap();
        let set = ListenerSet::bind(
            &[ListenerSpec::new(
                ListenerProtocol::FastCgi,
                "127.0.0.1:0".parse().unwrap(),
            )],
            2,
            &BindOptions::default(),
        )
        .unwrap();
        let (per_worker, _) = set.split().unwrap();
        let wo = WorkerOptions {
            pin: true,
            io: IoMode::Uring,
            buffers: BufPoolConfig::default(),
        };
        Workers::start(&wo, per_worker, |_ctx| async {}).err()
    })
    .join()
    .unwrap();
    match err {
        Some(StartError::Worker {
            error: WorkerStartError::Runtime(e),
            ..
        }) => assert!(e.to_string().contains("blocked"), "{e}"),
        other => panic!("expected a runtime error, got {other:?}"),
    }
}
