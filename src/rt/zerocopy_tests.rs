//! Tests of the zero-copy ring and the per-connection fallback in [`super::zerocopy`], over
//! loopback TCP (where the kernel always copies, so every notification says "copied") and a
//! Unix socket pair (which refuses SEND_ZC). A file of their own: `examples/send_modes.rs`
//! compiles `zerocopy.rs` into itself, where these tests could not build.

use super::zerocopy::*;
use crate::rt::backend::WorkerRuntime;
use bytes::Bytes;
use std::cell::Cell;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A TCP connection to a thread that reads everything and returns it.
fn tcp_pair() -> (std::net::TcpStream, std::thread::JoinHandle<Vec<u8>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    (std::net::TcpStream::connect(addr).unwrap(), reader)
}

/// Waits (on the runtime) until every notification has come.
async fn settle(ring: &ZcRing) {
    for _ in 0..500 {
        if ring.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("notifications still due: {ring:?}");
}

#[test]
fn forced_zero_copy_sends_8_mib_byte_for_byte() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let (s, reader) = tcp_pair();
    let data = pattern(8 << 20);
    let expected = data.clone();
    rt.block_on(async move {
        let ring = ZcRing::new().expect("SEND_ZC");
        let copied = Rc::new(Cell::new(0u64));
        let c2 = copied.clone();
        ring.set_on_copied(move || c2.set(c2.get() + 1));
        let conn = ZcConn::new(
            ring.clone(),
            ZcPolicy {
                threshold: 1,
                fallback_after: 0,
                max_pinned: usize::MAX,
            },
        );
        // Twice, so the second response goes zero-copy after the first one's reports.
        for _ in 0..2 {
            assert!(conn.wants(data.len()));
            let (r, sent) = conn.send_all(s.as_raw_fd(), &data).await;
            r.unwrap();
            assert_eq!(sent.bytes, data.len(), "forced: never falls back");
            assert!(sent.ops >= 1);
        }
        drop(data);
        settle(&ring).await;
        let stats = ring.stats();
        assert!(!conn.fell_back());
        assert_eq!(stats.copied + stats.zero_copied, stats.sends, "{stats:?}");
        // Loopback copies every zero-copy send when the receiver gets it.
        assert_eq!(stats.copied, stats.sends, "{stats:?}");
        assert_eq!(copied.get(), stats.copied);
        drop(s);
    });
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 2 * expected.len());
    assert!(got[..expected.len()] == expected[..]);
    assert!(got[expected.len()..] == expected[..]);
}

#[test]
fn copied_notifications_make_a_connection_fall_back() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let (s, reader) = tcp_pair();
    let data = pattern(256 * 1024);
    let rounds = 20;
    let expected = data.clone();
    rt.block_on(async move {
        let ring = ZcRing::new().expect("SEND_ZC");
        let conn = ZcConn::new(
            ring.clone(),
            ZcPolicy {
                threshold: 64 * 1024,
                fallback_after: 2,
                max_pinned: usize::MAX,
            },
        );
        assert!(!conn.wants(1000), "below the threshold");
        let mut zero_copy_rounds = 0;
        for _ in 0..rounds {
            if conn.wants(data.len()) {
                let (r, sent) = conn.send_all(s.as_raw_fd(), &data).await;
                r.unwrap();
                if sent.bytes > 0 {
                    zero_copy_rounds += 1;
                }
                // What the zero-copy path left (after a fallback on the way), plainly.
                send_plain(&s, &data[sent.bytes..]);
            } else {
                send_plain(&s, &data);
            }
            // Let the notifications of this round arrive.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        settle(&ring).await;
        assert!(conn.fell_back(), "{conn:?} {:?}", ring.stats());
        assert!(!conn.wants(data.len()));
        assert!(ring.stats().copied >= 2, "{:?}", ring.stats());
        assert!(
            zero_copy_rounds < rounds,
            "fell back after its copied reports"
        );
        drop(s);
    });
    let got = reader.join().unwrap();
    assert_eq!(got.len(), rounds * expected.len());
    for chunk in got.chunks(expected.len()) {
        assert!(chunk == &expected[..]);
    }
}

/// A blocking plain send (the socket is blocking; the runtime waits meanwhile).
fn send_plain(mut s: &std::net::TcpStream, b: &[u8]) {
    use std::io::Write;
    s.write_all(b).unwrap();
}

#[test]
fn unix_sockets_refuse_zero_copy_and_fall_back_at_once() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    rt.block_on(async move {
        let ring = ZcRing::new().expect("SEND_ZC");
        let conn = ZcConn::new(
            ring.clone(),
            ZcPolicy {
                threshold: 1,
                fallback_after: 0,
                max_pinned: usize::MAX,
            },
        );
        let (r, sent) = conn.send_all(a.as_raw_fd(), &pattern(100_000)).await;
        r.unwrap();
        assert_eq!(sent.bytes, 0);
        assert_eq!(sent.ops, 1);
        assert!(conn.fell_back(), "EOPNOTSUPP turns it off even when forced");
        assert!(!conn.wants(100_000));
        settle(&ring).await;
        drop(a);
    });
    let mut v = Vec::new();
    b.read_to_end(&mut v).unwrap();
    assert!(v.is_empty());
}

#[test]
fn a_dropped_send_is_cancelled_and_its_memory_kept_until_the_kernel_is_done() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    socket2::SockRef::from(&s)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    let (mut peer, _) = l.accept().unwrap();
    let data = pattern(4 << 20);
    let total = rt.block_on(async {
        let ring = ZcRing::new().expect("SEND_ZC");
        let mut total = 0usize;
        // The peer reads nothing: sends fill the buffers until one waits in the kernel.
        loop {
            let send = ring.send(s.as_raw_fd(), data.slice(total..));
            match tokio::time::timeout(Duration::from_millis(200), send).await {
                Ok(r) => total += r.unwrap(),
                Err(_) => break, // dropped while in flight: cancelled
            }
        }
        assert!(total < data.len());
        // Read what was sent while the ring reaps the cancellation and the notifications.
        let drain = std::thread::spawn(move || {
            let mut v = vec![0u8; total];
            peer.read_exact(&mut v).unwrap();
            v
        });
        settle(&ring).await;
        (total, drain.join().unwrap())
    });
    let (total, got) = total;
    assert!(got[..] == data[..total]);
}

#[test]
fn sends_from_a_registered_buffer_deliver_every_byte() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let (s, reader) = tcp_pair();
    let data = pattern(1 << 20);
    let expected = data.clone();
    rt.block_on(async move {
        let ring = ZcRing::new().expect("SEND_ZC");
        ring.register_buffers(vec![data.to_vec().into_boxed_slice()])
            .unwrap();
        assert!(ring.register_buffers(Vec::new()).is_err(), "once only");
        let mut off = 0;
        while off < data.len() {
            off += ring
                .send_fixed(s.as_raw_fd(), 0, off..data.len())
                .await
                .unwrap();
        }
        let bad = ring.send_fixed(s.as_raw_fd(), 1, 0..1).await.unwrap_err();
        assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
        settle(&ring).await;
        assert_eq!(ring.stats().copied, ring.stats().sends);
        drop(s);
    });
    assert!(reader.join().unwrap() == expected[..]);
}

/// A peer that reads nothing holds back the notifications of whatever waits in the socket's
/// send buffer: the connection stops sending zero-copy once it has `max_pinned` bytes (or one
/// send) pinned, instead of pinning the whole send buffer.
#[test]
fn a_stalled_peer_pins_at_most_max_pinned() {
    const MAX_PINNED: usize = 256 * 1024;
    const SEND: usize = 64 * 1024;
    let rt = WorkerRuntime::uring().expect("io_uring");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    socket2::SockRef::from(&s)
        .set_send_buffer_size(4 << 20)
        .unwrap();
    let (mut peer, _) = l.accept().unwrap();
    let data = pattern(SEND);
    rt.block_on(async {
        let ring = ZcRing::new().expect("SEND_ZC");
        let conn = ZcConn::new(
            ring.clone(),
            ZcPolicy {
                threshold: 1,
                fallback_after: 0,
                max_pinned: MAX_PINNED,
            },
        );
        let mut total = 0usize;
        let mut refused = false;
        for _ in 0..256 {
            if !conn.wants(SEND) {
                refused = true;
                break;
            }
            let send = conn.send_all(s.as_raw_fd(), &data);
            let Ok((r, sent)) = tokio::time::timeout(Duration::from_millis(200), send).await else {
                break; // The socket buffer is full: the bound never came into play.
            };
            r.unwrap();
            total += sent.bytes;
            assert!(conn.pinned() <= MAX_PINNED + SEND, "{}", conn.pinned());
            // Let the notifications of what the peer's buffer took arrive.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(refused, "pinned {} after {total} bytes", conn.pinned());
        assert!(conn.pinned() > 0);
        let drain = std::thread::spawn(move || {
            let mut v = vec![0u8; total];
            peer.read_exact(&mut v).unwrap();
        });
        settle(&ring).await;
        assert_eq!(conn.pinned(), 0, "every notification gives its bytes back");
        drain.join().unwrap();
    });
}
