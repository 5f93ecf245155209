//! Sending bytes on a stream socket on the io_uring backend, and which way to do it by
//! size. The choice is measured, not assumed; the numbers are below.
//!
//! Ways a send can be made:
//! - **direct** ([`send_direct`]): one `send(2)` with `MSG_DONTWAIT` from the worker thread,
//!   then io_uring writes for whatever did not fit into the socket buffer.
//! - **plain** ([`send_plain`]): `IORING_OP_WRITE` from an owned buffer.
//! - **fixed** ([`send_fixed`]): `IORING_OP_WRITE_FIXED` from a registered buffer
//!   ([`super::bufpool`]; tokio-uring has `write_fixed`/`read_fixed` on both `TcpStream`
//!   and `UnixStream`).
//! - **zero-copy** (`IORING_OP_SEND_ZC`): not offered, for two reasons. (1) It loses
//!   everywhere below: on loopback the kernel copies the pages anyway when the receiver
//!   gets them, and tokio-uring's `send_zc` resolves only on the second (notification)
//!   completion, so a connection's sends are serialised behind it (~10k sends/s at any
//!   size). (2) tokio-uring 0.5 has SEND_ZC only as `UdpSocket::send_zc` (no stream
//!   `send_zc`/`sendmsg_zc`; it does work on a `dup` of a TCP socket, which is how it was
//!   measured), and that call panics whenever a send fails: `send_zc.rs:56` unwraps the
//!   result of every completion flagged `IORING_CQE_F_MORE`, but the kernel flags failed
//!   sends that way too (EOPNOTSUPP on AF_UNIX, ECONNRESET after a peer reset, both
//!   reproduced here). The panic leaves the op in the driver's slab, and dropping the
//!   runtime then hangs. Its public custom-operation API (`UnsubmittedOneshot`) cannot
//!   carry SEND_ZC either: it expects one completion and hits `unreachable!` on a second.
//!   Using SEND_ZC safely needs a patched tokio-uring (or a ring of ringgate's own), and
//!   the measurements give no reason to.
//!
//! Measured with `examples/send_modes.rs` on the development VM (2 cores, kernel 6.18,
//! other builds running: the spread is large), sender pinned to core 0, receiver
//! draining with blocking 1 MiB `read`s on core 1, one send in flight, each configuration
//! run for 1 s, 7 interleaved repetitions, median (min-max) GB/s, median sends per second
//! and the sender thread's CPU time per KiB sent ("epoll" is tokio's `write` on the epoll
//! backend, for reference):
//!
//! ```text
//! cargo run --release --example send_modes -- --secs 1 --reps 7
//! transport size   mode    GB/s   (min-max)      ops/s  CPU ns/KiB
//! tcp       1KiB   epoll   0.171  (0.158-0.288)  167018       5952
//! tcp       1KiB   plain   0.127  (0.113-0.136)  123865       8068
//! tcp       1KiB   direct  0.184  (0.160-0.505)  179631       5529
//! tcp       1KiB   fixed   0.114  (0.103-0.149)  111254       8936
//! tcp       1KiB   zc      0.012  (0.007-0.014)   11644      37855
//! tcp       4KiB   epoll   0.582  (0.441-0.703)  142106       1591
//! tcp       4KiB   plain   0.393  (0.338-0.481)   95843       2401
//! tcp       4KiB   direct  0.589  (0.444-0.621)  143810       1714
//! tcp       4KiB   fixed   0.396  (0.328-0.424)   96602       2495
//! tcp       4KiB   zc      0.042  (0.035-0.056)   10201      10510
//! tcp       16KiB  epoll   1.834  (1.170-1.986)  111922        533
//! tcp       16KiB  plain   1.495  (1.272-1.600)   91276        680
//! tcp       16KiB  direct  1.946  (1.215-2.144)  118787        497
//! tcp       16KiB  fixed   1.471  (1.359-1.503)   89801        689
//! tcp       16KiB  zc      0.189  (0.146-0.210)   11523       2696
//! tcp       64KiB  epoll   1.878  (1.226-2.767)   28676        513
//! tcp       64KiB  plain   1.716  (1.259-2.678)   26199        506
//! tcp       64KiB  direct  1.620  (0.896-2.378)   24732        589
//! tcp       64KiB  fixed   1.528  (0.697-2.112)   23322        660
//! tcp       64KiB  zc      0.576  (0.312-0.781)    8789        992
//! tcp       256KiB epoll   2.501  (1.290-3.152)    9550        381
//! tcp       256KiB plain   2.686  (1.418-2.987)   10288        375
//! tcp       256KiB direct  2.473  (1.642-2.825)    9508        359
//! tcp       256KiB fixed   2.462  (1.200-2.768)    9396        381
//! tcp       256KiB zc      2.166  (0.778-2.655)    8261        389
//! tcp       1MiB   epoll   3.041  (1.622-4.118)    2927        286
//! tcp       1MiB   plain   2.446  (1.814-4.285)    2848        273
//! tcp       1MiB   direct  3.404  (1.909-3.861)    3399        266
//! tcp       1MiB   fixed   3.274  (1.736-3.924)    3405        294
//! tcp       1MiB   zc      2.060  (1.113-2.765)    1965        426
//! unix      1KiB   epoll   0.641  (0.428-0.894)  625797       1424
//! unix      1KiB   plain   0.179  (0.072-0.238)  174339       5536
//! unix      1KiB   direct  0.681  (0.190-0.803)  664659       1474
//! unix      1KiB   fixed   0.193  (0.058-0.227)  187997       5290
//! unix      4KiB   epoll   0.908  (0.279-1.754)  221642        643
//! unix      4KiB   plain   0.404  (0.093-0.841)   98628       1551
//! unix      4KiB   direct  0.646  (0.244-2.083)  158269        642
//! unix      4KiB   fixed   0.625  (0.152-0.761)  152489       1593
//! unix      16KiB  epoll   3.572  (0.885-4.200)  218043        268
//! unix      16KiB  plain   2.184  (0.528-2.449)  133289        463
//! unix      16KiB  direct  3.652  (1.070-4.319)  223608        263
//! unix      16KiB  fixed   1.916  (0.592-2.351)  116919        509
//! unix      64KiB  epoll   3.692  (1.363-4.541)   56543        233
//! unix      64KiB  plain   3.263  (1.087-4.057)   50255        295
//! unix      64KiB  direct  4.193  (1.877-5.471)   65419        225
//! unix      64KiB  fixed   3.558  (0.928-4.565)   54427        271
//! unix      256KiB epoll   4.198  (1.449-4.702)   19558        202
//! unix      256KiB plain   3.955  (1.281-5.042)   16970        226
//! unix      256KiB direct  4.037  (1.240-5.334)   16066        235
//! unix      256KiB fixed   4.536  (1.407-4.966)   18170        218
//! unix      1MiB   epoll   4.210  (1.749-4.863)    6681        203
//! unix      1MiB   plain   4.769  (1.549-5.689)    7612        199
//! unix      1MiB   direct  5.162  (1.910-5.744)    9258        183
//! unix      1MiB   fixed   4.820  (1.480-5.826)    7454        203
//! ```
//!
//! System calls per send at 1 KiB (`perf stat -e 'syscalls:sys_enter_io_uring_enter,
//! syscalls:sys_enter_epoll_wait,syscalls:sys_enter_sendto' ... --only MODE:1K:tcp`):
//! plain and fixed: 1 `io_uring_enter` + 2 `epoll_wait` (tokio-uring submits when the
//! runtime parks and learns of completions through the ring's descriptor in tokio's
//! epoll); direct and epoll: 1 `sendto`. Same for Unix sockets. With many connections per
//! worker the ring's calls are shared between them; this benchmark has one.
//!
//! The receive side, for the same question about registered buffers (`--recv`: the peer
//! writes 1 MiB chunks, the measured thread reads SIZE per operation, 5 repetitions):
//!
//! ```text
//! cargo run --release --example send_modes -- --recv --secs 1 --reps 5 \
//!     --sizes 4K,16K,64K,256K --modes epoll,plain,fixed
//! transport size   mode    GB/s   (min-max)      ops/s  CPU ns/KiB
//! tcp       4KiB   epoll   1.627  (1.356-3.422)  397609        379
//! tcp       4KiB   plain   0.682  (0.627-0.875)  166820       1417
//! tcp       4KiB   fixed   0.659  (0.579-0.803)  160846       1440
//! tcp       16KiB  epoll   4.107  (2.544-4.565)  252947        186
//! tcp       16KiB  plain   1.777  (1.458-2.613)  108952        471
//! tcp       16KiB  fixed   2.798  (2.405-3.227)  171241        338
//! tcp       64KiB  epoll   4.172  (2.599-4.407)   67546        120
//! tcp       64KiB  plain   4.810  (2.998-5.874)   77568        143
//! tcp       64KiB  fixed   4.837  (4.520-5.026)   76759        164
//! tcp       256KiB epoll   3.775  (3.282-4.073)   31377        137
//! tcp       256KiB plain   3.413  (3.166-3.638)   29177        159
//! tcp       256KiB fixed   3.349  (2.818-3.947)   28008        158
//! unix      4KiB   epoll   2.131  (1.888-2.414)  524350        357
//! unix      4KiB   plain   0.792  (0.715-0.957)  193872       1091
//! unix      4KiB   fixed   0.815  (0.614-0.907)  199848       1084
//! unix      16KiB  epoll   3.720  (2.547-4.536)  239851        205
//! unix      16KiB  plain   1.884  (0.658-2.106)  118694        422
//! unix      16KiB  fixed   1.889  (0.733-2.295)  119046        424
//! unix      64KiB  epoll   4.447  (3.541-5.692)   88411        151
//! unix      64KiB  plain   4.806  (2.017-6.208)   82392        176
//! unix      64KiB  fixed   4.502  (2.854-6.000)   76006        187
//! unix      256KiB epoll   4.706  (2.675-5.317)   40642        141
//! unix      256KiB plain   6.305  (3.976-6.701)   98346        148
//! unix      256KiB fixed   5.911  (3.445-8.125)   82123        145
//! ```
//!
//! What the numbers say, and the policy:
//! - Up to 16 KiB, an io_uring write costs 1.3-1.5x (TCP) and 1.7-3.9x (Unix) the sender
//!   CPU per byte of a `send(2)` on epoll, and a direct send matches epoll. From 64 KiB up
//!   all ways are within the noise of each other, direct included. So every send starts
//!   direct, at every size; the io_uring write only carries what the socket buffer could not
//!   take, and waits for the peer.
//! - Registered buffers show no consistent gain: sending, fixed is within the noise of
//!   plain at every size; receiving, one row (TCP, 16 KiB) favours fixed and the others
//!   are equal or favour plain. A socket write copies from user memory without pinning
//!   pages, so registration has little to save. No send uses a registered buffer, and the
//!   pool (for reads) is off by default ([`super::bufpool::DEFAULT_BUFFER_COUNT`]).
//! - io_uring reads also cost 2-4x the CPU per byte of epoll reads up to 16 KiB in the
//!   `--recv` table (one connection, one read in flight): worth knowing for the
//!   connection driver; with many connections per worker the ring's system calls are
//!   shared, which this benchmark does not show.

// Production sends are direct (`send_direct`); the other paths are measured by
// `examples/send_modes.rs`, which compiles this file as its own module.
#![cfg_attr(not(test), allow(dead_code))]

use std::io;
use std::os::fd::AsRawFd;

use tokio_uring::buf::fixed::FixedBuf;
use tokio_uring::buf::{BoundedBuf, IoBuf};

/// A completed send.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Sent {
    /// Bytes sent.
    pub bytes: usize,
    /// Operations it took (more than one after short sends).
    pub ops: u32,
}

/// A tokio-uring stream socket (`TcpStream` or `UnixStream`).
pub trait UringWriteOps: AsRawFd {
    /// One `IORING_OP_WRITE`.
    fn write_op<T: BoundedBuf>(
        &self,
        buf: T,
    ) -> impl std::future::Future<Output = tokio_uring::BufResult<usize, T>>;
    /// One `IORING_OP_WRITE_FIXED`.
    fn write_fixed_op<T: BoundedBuf<Buf = FixedBuf>>(
        &self,
        buf: T,
    ) -> impl std::future::Future<Output = tokio_uring::BufResult<usize, T>>;
}

impl UringWriteOps for tokio_uring::net::TcpStream {
    async fn write_op<T: BoundedBuf>(&self, buf: T) -> tokio_uring::BufResult<usize, T> {
        self.write(buf).submit().await
    }
    async fn write_fixed_op<T: BoundedBuf<Buf = FixedBuf>>(
        &self,
        buf: T,
    ) -> tokio_uring::BufResult<usize, T> {
        self.write_fixed(buf).await
    }
}

impl UringWriteOps for tokio_uring::net::UnixStream {
    async fn write_op<T: BoundedBuf>(&self, buf: T) -> tokio_uring::BufResult<usize, T> {
        self.write(buf).submit().await
    }
    async fn write_fixed_op<T: BoundedBuf<Buf = FixedBuf>>(
        &self,
        buf: T,
    ) -> tokio_uring::BufResult<usize, T> {
        self.write_fixed(buf).await
    }
}

fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "peer accepted no bytes")
}

/// Drive `op` until `total` bytes from `start` are sent, retrying short sends.
macro_rules! send_loop {
    ($buf:ident, $total:expr, |$slice:ident| $op:expr) => {{
        let total = $total;
        let mut sent = Sent::default();
        let mut $buf = $buf;
        while sent.bytes < total {
            let $slice = $buf.slice(sent.bytes..total);
            let (res, back) = $op.await;
            $buf = back.into_inner();
            sent.ops += 1;
            match res {
                Ok(0) => return (Err(write_zero()), $buf),
                Ok(n) => sent.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), $buf),
            }
        }
        (Ok(sent), $buf)
    }};
}

/// Send all of `buf` with plain writes.
pub async fn send_plain<S: UringWriteOps, T: IoBuf>(stream: &S, buf: T) -> (io::Result<Sent>, T) {
    let total = IoBuf::bytes_init(&buf);
    send_loop!(buf, total, |slice| stream.write_op(slice))
}

/// Send the first `len` bytes of a registered buffer with fixed writes.
pub async fn send_fixed<S: UringWriteOps>(
    stream: &S,
    buf: FixedBuf,
    len: usize,
) -> (io::Result<Sent>, FixedBuf) {
    let len = len.min(IoBuf::bytes_init(&buf));
    send_loop!(buf, len, |slice| stream.write_fixed_op(slice))
}

/// Send all of `buf`: first one `send(2)` with `MSG_DONTWAIT` straight from this thread,
/// then, for whatever did not fit into the socket buffer, plain io_uring writes.
///
/// Most responses fit into the socket buffer, and then this costs one system call instead
/// of an io_uring round trip (which in tokio-uring is an `io_uring_enter` plus the
/// runtime's `epoll_wait` on the ring, and a task wake-up).
pub async fn send_direct<S: UringWriteOps, T: IoBuf>(stream: &S, buf: T) -> (io::Result<Sent>, T) {
    let total = IoBuf::bytes_init(&buf);
    let mut sent = Sent::default();
    if total > 0 {
        // SAFETY: the pointer and length describe `buf`'s initialised bytes, which stay
        // alive and unmoved for the call; send(2) only reads them.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                buf.stable_ptr().cast(),
                total,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        sent.ops = 1;
        if n >= 0 {
            sent.bytes = n as usize;
        } else {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                return (Err(e), buf);
            }
        }
    }
    if sent.bytes == total {
        return (Ok(sent), buf);
    }
    let first = sent;
    let (res, buf) = {
        let start = first.bytes;
        let mut sent = Sent::default();
        let mut buf = buf;
        while start + sent.bytes < total {
            let slice = buf.slice(start + sent.bytes..total);
            let (res, back) = stream.write_op(slice).await;
            buf = back.into_inner();
            sent.ops += 1;
            match res {
                Ok(0) => return (Err(write_zero()), buf),
                Ok(n) => sent.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(sent), buf)
    };
    (
        res.map(|rest| Sent {
            bytes: first.bytes + rest.bytes,
            ops: first.ops + rest.ops,
        }),
        buf,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
