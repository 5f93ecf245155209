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
//! - **zero-copy** (`IORING_OP_SEND_ZC`): in [`super::zerocopy`], on a small ring of the
//!   worker's own (tokio-uring 0.5's `send_zc` exists only on `UdpSocket`, ignores the
//!   kernel's copy report, and panics on a failed send). Off by default
//!   (`[sends] zerocopy_threshold`): on loopback the kernel copies every zero-copy send
//!   anyway and it measured slower than a plain send at every size from 1 KiB to 8 MiB; on
//!   AF_UNIX the kernel refuses it (EOPNOTSUPP). A connection whose sends are reported copied
//!   falls back to the paths here by itself.
//!
//! Measured with `examples/send_modes.rs`; the tables are in the README ("Measured figures",
//! send and receive paths).
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
