//! Tests of the multishot receive ring ([`super::recv_ring`]) through an io_uring connection's
//! read half ([`super::io::uring_halves`]), over loopback TCP and Unix socket pairs: bytes in
//! order across recycled buffers, the end of a stream and a reset, the fallback when the ring
//! has no free buffer, the cancellation of a connection that stops reading, and the slots and
//! buffers given back when connections go.

use std::io::Write;
use std::time::Duration;

use super::driver::{ReadHalf, WriteHalf};
use super::io::uring_halves;
use super::recv_ring::*;
use crate::rt::backend::WorkerRuntime;

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + seed) % 251) as u8).collect()
}

fn ring(buffers: usize, buffer_size: usize) -> RecvRing {
    RecvRing::new(RecvConfig {
        buffers,
        buffer_size,
    })
    .expect("multishot receives (kernel 6.1 or later)")
}

/// A loopback TCP connection: our end for the ring, the peer's end for the test.
fn tcp_pair() -> (tokio_uring::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (ours, _) = l.accept().unwrap();
    (tokio_uring::net::TcpStream::from_std(ours), peer)
}

fn unix_pair() -> (tokio_uring::net::UnixStream, std::os::unix::net::UnixStream) {
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    (tokio_uring::net::UnixStream::from_std(ours), peer)
}

/// A first exchange on a new connection, whose first read is a plain `recv(2)` of what is
/// there: the reads after it go through the ring.
async fn prime(r: &mut impl ReadHalf, peer: &mut impl Write) {
    peer.write_all(b"-").unwrap();
    let n = r.read().await.unwrap();
    assert_eq!(r.filled(n), b"-");
    r.release();
}

/// Reads until the end of the stream, giving every buffer back after copying it.
async fn read_to_end(r: &mut impl ReadHalf) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        let n = r.read().await?;
        if n == 0 {
            return Ok(got);
        }
        got.extend_from_slice(r.filled(n));
        r.release();
    }
}

/// Lets the reaper run until `done` holds (or fails after two seconds).
async fn settle(ring: &RecvRing, done: impl Fn(&RecvRing) -> bool) {
    for _ in 0..200 {
        if done(ring) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ring did not settle: {ring:?}");
}

#[test]
fn bytes_arrive_in_order_across_recycled_buffers() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        // 4 MiB through 8 buffers of 4 KiB: each buffer is reused hundreds of times.
        let ring = ring(8, 4096);
        let (ours, mut peer) = tcp_pair();
        let data = pattern(4 << 20, 0);
        let sent = data.clone();
        let writer = std::thread::spawn(move || peer.write_all(&sent));
        let (mut r, _w) = uring_halves(ours, None, Some(ring.connection()), None);
        let got = read_to_end(&mut r).await.unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            got == data,
            "{} bytes back, not the {} sent",
            got.len(),
            data.len()
        );
        // At the end of the stream the receive is over: nothing held, nothing to cancel.
        assert_eq!(ring.held(), 0);
        drop(r);
        assert_eq!(ring.slots(), 0);
    });
}

#[test]
fn unix_sockets_receive_too() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        let ring = ring(4, 1024);
        let (ours, mut peer) = unix_pair();
        let data = pattern(100_000, 7);
        let sent = data.clone();
        let writer = std::thread::spawn(move || peer.write_all(&sent));
        let (mut r, _w) = uring_halves(ours, None, Some(ring.connection()), None);
        let got = read_to_end(&mut r).await.unwrap();
        writer.join().unwrap().unwrap();
        assert!(got == data);
    });
}

#[test]
fn a_reset_is_an_error_after_the_bytes_before_it() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        let ring = ring(4, 1024);
        let (ours, mut peer) = tcp_pair();
        let (mut r, _w) = uring_halves(ours, None, Some(ring.connection()), None);
        peer.write_all(b"hello").unwrap();
        let n = r.read().await.unwrap();
        assert_eq!(r.filled(n), b"hello");
        // SO_LINGER 0: close sends a reset.
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        let e = r.read().await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(ring.held(), 0);
    });
}

#[test]
fn without_a_free_buffer_a_connection_reads_plainly_and_counts_it() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        // One buffer, held by the first connection (read, not released) while the second
        // one's bytes arrive.
        let ring = ring(1, 1024);
        let counted = std::rc::Rc::new(std::cell::Cell::new(0));
        let c2 = counted.clone();
        ring.set_on_exhausted(move || c2.set(c2.get() + 1));
        let (a, mut peer_a) = tcp_pair();
        let (b, mut peer_b) = tcp_pair();
        let (mut ra, _wa) = uring_halves(a, None, Some(ring.connection()), None);
        let (mut rb, _wb) = uring_halves(b, None, Some(ring.connection()), None);
        prime(&mut ra, &mut peer_a).await;
        prime(&mut rb, &mut peer_b).await;
        peer_a.write_all(b"first").unwrap();
        let n = ra.read().await.unwrap();
        assert_eq!(ra.filled(n), b"first");
        assert_eq!(ring.held(), 1);
        let data = pattern(50_000, 3);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            peer_b.write_all(&sent).unwrap();
            peer_b.shutdown(std::net::Shutdown::Write).unwrap();
            peer_b
        });
        let got = read_to_end(&mut rb).await.unwrap();
        let _peer_b = writer.join().unwrap();
        assert!(got == data);
        assert!(counted.get() >= 1, "the shortage was not counted: {ring:?}");
        // The first connection still has its bytes, then reads on through the ring.
        assert_eq!(ra.filled(n), b"first");
        ra.release();
        peer_a.write_all(b"second").unwrap();
        let n = ra.read().await.unwrap();
        assert_eq!(ra.filled(n), b"second");
    });
}

#[test]
fn a_connection_that_stops_reading_is_cancelled_and_loses_nothing() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        let ring = ring(64, 1024);
        let (a, mut peer_a) = tcp_pair();
        let (mut ra, _wa) = uring_halves(a, None, Some(ring.connection()), None);
        peer_a.write_all(b"x").unwrap();
        let n = ra.read().await.unwrap();
        assert_eq!(ra.filled(n), b"x");
        ra.release();
        // Arm the receive again, then stop reading while 1 MiB comes: the peer's writes
        // stall once the socket buffers are full.
        let data = pattern(1 << 20, 11);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            peer_a.write_all(&sent).unwrap();
            peer_a.shutdown(std::net::Shutdown::Write).unwrap();
            peer_a
        });
        let first = tokio::time::timeout(Duration::from_millis(1), ra.read()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Cancelled with a few buffers queued: the rest of the ring serves others.
        assert!(
            ring.held() < 64,
            "a stalled connection holds the whole ring: {ring:?}"
        );
        let (b, mut peer_b) = tcp_pair();
        let (mut rb, _wb) = uring_halves(b, None, Some(ring.connection()), None);
        peer_b.write_all(b"other").unwrap();
        let n = rb.read().await.unwrap();
        assert_eq!(rb.filled(n), b"other");
        rb.release();
        // Reading again brings every byte, in order.
        let mut got = Vec::new();
        if let Ok(Ok(n)) = first {
            got.extend_from_slice(ra.filled(n));
        }
        got.extend(read_to_end(&mut ra).await.unwrap());
        let _peer_a = writer.join().unwrap();
        assert!(got == data, "{} of {} bytes", got.len(), data.len());
        assert_eq!(ring.held(), 0);
    });
}

#[test]
fn dropped_connections_give_back_their_slots_and_buffers() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        let ring = ring(16, 1024);
        let mut peers = Vec::new();
        for shut_down_first in [false, true] {
            for _ in 0..8 {
                let (s, mut peer) = tcp_pair();
                let (mut r, mut w) = uring_halves(s, None, Some(ring.connection()), None);
                peer.write_all(b"request").unwrap();
                let n = r.read().await.unwrap();
                assert_eq!(r.filled(n), b"request");
                // More bytes queued and not read, and a receive armed.
                peer.write_all(b"more").unwrap();
                let _ = tokio::time::timeout(Duration::from_millis(5), r.read()).await;
                if shut_down_first {
                    // The driver's way: the writer shuts down, so no cancellation is needed.
                    w.shutdown();
                }
                drop((r, w));
                peers.push(peer);
            }
        }
        settle(&ring, |r| r.slots() == 0 && r.held() == 0).await;
        // The ring still serves new connections.
        let (s, mut peer) = tcp_pair();
        let (mut r, _w) = uring_halves(s, None, Some(ring.connection()), None);
        peer.write_all(b"again").unwrap();
        let n = r.read().await.unwrap();
        assert_eq!(r.filled(n), b"again");
    });
}

#[test]
fn a_burst_on_many_connections_at_once_is_all_received() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        // More connections than the kernel runs deferred receives in one go (20 since 6.13):
        // the receives it leaves for later must not wait for traffic that never comes.
        let ring = ring(256, 1024);
        let mut conns = Vec::new();
        for _ in 0..100 {
            let (s, peer) = tcp_pair();
            let (mut r, w) = uring_halves(s, None, Some(ring.connection()), None);
            // Arms the receive.
            assert!(tokio::time::timeout(Duration::from_millis(1), r.read())
                .await
                .is_err());
            conns.push((r, w, peer));
        }
        // Every peer writes before the worker looks again.
        for (i, (_, _, peer)) in conns.iter_mut().enumerate() {
            peer.write_all(&[i as u8]).unwrap();
        }
        for (i, (r, _, _)) in conns.iter_mut().enumerate() {
            let n = tokio::time::timeout(Duration::from_secs(2), r.read())
                .await
                .unwrap_or_else(|_| panic!("connection {i} never got its byte: {ring:?}"))
                .unwrap();
            assert_eq!(r.filled(n), &[i as u8]);
        }
    });
}

#[test]
fn a_worker_stops_promptly_with_receives_armed() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let peers = rt.block_on(async {
        let ring = ring(16, 1024);
        let mut peers = Vec::new();
        for _ in 0..8 {
            let (s, peer) = tcp_pair();
            let (mut r, w) = uring_halves(s, None, Some(ring.connection()), None);
            // A connection task that waits in its armed receive until the runtime goes.
            tokio::task::spawn_local(async move {
                let _w = w;
                let _ = r.read().await;
            });
            peers.push(peer);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        peers
    });
    // Dropping the runtime drops the tasks (each cancels its receive), then the ring, which
    // waits for the kernel to confirm every cancellation before it frees the buffers: the
    // confirmations come at once, not after the ring's 200 ms deadline.
    let start = std::time::Instant::now();
    drop(rt);
    assert!(
        start.elapsed() < Duration::from_millis(150),
        "stopping took {:?}",
        start.elapsed()
    );
    drop(peers);
}

#[test]
fn a_non_blocking_socket_receives_too() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        // The acceptors hand io_uring blocking sockets; a non-blocking one must still wait
        // in its receive rather than end it with EAGAIN.
        let ring = ring(4, 1024);
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = tokio_uring::net::UnixStream::from_std(ours);
        let (mut r, _w) = uring_halves(ours, None, Some(ring.connection()), None);
        let data = pattern(20_000, 5);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(&sent)
        });
        let got = tokio::time::timeout(Duration::from_secs(5), read_to_end(&mut r))
            .await
            .expect("the read never finished")
            .unwrap();
        writer.join().unwrap().unwrap();
        assert!(got == data);
    });
}
