//! Unit tests of the send paths in [`super::send`] (a file of their own: `examples/send_modes.rs`
//! compiles `send.rs` into itself, where these tests could not build).

use super::send::*;
use crate::rt::backend::WorkerRuntime;
use crate::rt::bufpool::{BufPool, BufPoolConfig};
use std::io::Read;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Send `len` bytes each way over a TCP pair and check what arrives.
#[test]
fn every_mode_delivers_every_byte_over_tcp() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    let len = 3 * 1024 * 1024 + 7; // several short sends at least
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..3 {
            let (mut s, _) = listener.accept().unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            got.push(v);
        }
        got
    });
    rt.block_on(async move {
        let s = tokio_uring::net::TcpStream::connect(addr).await.unwrap();
        let (r, _) = send_plain(&s, pattern(len)).await;
        assert_eq!(r.unwrap().bytes, len);
        drop(s);

        let s = tokio_uring::net::TcpStream::connect(addr).await.unwrap();
        let (pool, err) = BufPool::register(BufPoolConfig {
            count: 1,
            size: 4 * 1024 * 1024,
        });
        assert!(err.is_none());
        let mut fb = pool.try_next().unwrap();
        fb[..len].copy_from_slice(&pattern(len));
        let (r, _fb) = send_fixed(&s, fb, len).await;
        assert_eq!(r.unwrap().bytes, len);
        drop(s);

        // A small send buffer, so the direct send is short and io_uring finishes.
        let std_s = std::net::TcpStream::connect(addr).unwrap();
        socket2::SockRef::from(&std_s)
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let s = tokio_uring::net::TcpStream::from_std(std_s);
        let (r, buf) = send_direct(&s, pattern(len)).await;
        let sent = r.unwrap();
        assert_eq!(sent.bytes, len);
        assert!(
            sent.ops >= 2,
            "3 MiB cannot fit a 16 KiB send buffer: {sent:?}"
        );
        assert_eq!(buf.len(), len, "buffer returned");
        drop(s);
    });
    for v in reader.join().unwrap() {
        assert_eq!(v.len(), len);
        assert!(v == pattern(len));
    }
}

#[test]
fn unix_streams_send_every_way() {
    let rt = WorkerRuntime::uring().expect("io_uring");
    rt.block_on(async {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = tokio_uring::net::UnixStream::from_std(a);
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            b.read_to_end(&mut v).unwrap();
            v
        });
        let (r, _) = send_plain(&a, pattern(100_000)).await;
        assert_eq!(r.unwrap().bytes, 100_000);
        let (pool, _) = BufPool::register(BufPoolConfig {
            count: 1,
            size: 65536,
        });
        let mut fb = pool.try_next().unwrap();
        fb[..1000].copy_from_slice(&pattern(1000));
        let (r, _) = send_fixed(&a, fb, 1000).await;
        assert_eq!(r.unwrap().bytes, 1000);
        let (r, _) = send_direct(&a, pattern(10)).await;
        assert_eq!(r.unwrap(), Sent { bytes: 10, ops: 1 });
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), 101_010);
        assert!(got[..100_000] == pattern(100_000)[..]);
    });
}
