//! Socket halves for the connection driver: io_uring streams (tokio-uring, owned buffers)
//! and plain tokio streams (epoll), TCP and Unix alike.
//!
//! An io_uring write half may also send zero-copy (`rt::zerocopy`): chunks at or above the
//! worker's threshold go through SEND_ZC until the kernel's copy report makes the connection
//! fall back; whatever the zero-copy path did not send goes the usual way.
//!
//! What a waiting connection holds: on epoll, no buffer (it waits for readiness, then reads
//! into a worker buffer it gives back at once); on io_uring, the small buffer of its pending
//! read ([`IDLE_READ_BYTES`]) or, with registered buffers on, its registered buffer.

use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::driver::{ReadHalf, WriteHalf};
use tokio_uring::buf::fixed::FixedBuf;

use super::bufpool::PoolBuf;
use super::readbuf;
use super::zerocopy::ZcConn;
use crate::metrics::SendMode;

/// Bytes of the buffer a new connection's io_uring reads wait with when registered buffers
/// are off. The kernel owns it for as long as the connection is idle, so it starts small (a
/// plain GET from nginx fits); a read that fills it doubles it, up to [`MAX_IDLE_READ_BYTES`].
/// Bytes beyond it are read without it, straight into a worker buffer ([`super::readbuf`]).
pub const IDLE_READ_BYTES: usize = 1024;

/// The most an idle io_uring read buffer grows to: a batch of 16 multiplexed nginx-sized
/// requests (about 11 KiB) then arrives in one ring read. With 4 KiB, every such batch took a
/// ring read and a `recv(2)` for the rest (one extra system call per batch, counted with
/// `perf stat -e syscalls:sys_enter_recvfrom`). Only a connection whose reads filled 8 KiB
/// gets there; a fresh or a one-request-at-a-time one stays at 1-2 KiB.
pub const MAX_IDLE_READ_BYTES: usize = 16 * 1024;

/// An io_uring stream (TCP or Unix), shared by the read and the write half.
pub trait UringStream: std::os::fd::AsRawFd + 'static {
    /// Reads into `buf` from its start.
    fn read(&self, buf: Vec<u8>)
        -> impl std::future::Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Reads into the registered buffer `buf` from its start.
    fn read_fixed(
        &self,
        buf: FixedBuf,
    ) -> impl std::future::Future<Output = (io::Result<usize>, FixedBuf)>;
    /// Writes all of `data`; says whether io_uring writes were needed.
    fn write_all(&self, data: Bytes) -> impl std::future::Future<Output = io::Result<SendMode>>;
    /// Shuts the socket down.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

macro_rules! uring_stream {
    ($ty:ty) => {
        impl UringStream for $ty {
            // tokio-uring's futures as they are: a wrapping `async fn` would add a layer to
            // the state every waiting connection holds.
            fn read(
                &self,
                buf: Vec<u8>,
            ) -> impl std::future::Future<Output = (io::Result<usize>, Vec<u8>)> {
                <$ty>::read(self, buf)
            }
            fn read_fixed(
                &self,
                buf: FixedBuf,
            ) -> impl std::future::Future<Output = (io::Result<usize>, FixedBuf)> {
                <$ty>::read_fixed(self, buf)
            }
            async fn write_all(&self, data: Bytes) -> io::Result<SendMode> {
                // One send(2) first, io_uring only for what the socket buffer did not take:
                // measured cheaper at every size (see `rt::send`).
                let sent = super::send::send_direct(self, data).await.0?;
                Ok(if sent.ops <= 1 {
                    SendMode::Direct
                } else {
                    SendMode::Ring
                })
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$ty>::shutdown(self, how)
            }
        }
    };
}

uring_stream!(tokio_uring::net::TcpStream);
uring_stream!(tokio_uring::net::UnixStream);

/// Both halves of an io_uring stream; pending reads wait with `buf` (registered or heap);
/// with `zc`, large writes go zero-copy.
pub fn uring_halves<S: UringStream>(
    stream: S,
    buf: PoolBuf,
    zc: Option<ZcConn>,
) -> (UringRead<S>, UringWrite<S>) {
    let stream = Rc::new(stream);
    (
        UringRead {
            stream: stream.clone(),
            buf: Some(buf),
            borrowed: None,
            try_now: false,
        },
        UringWrite { stream, zc },
    )
}

/// The read half of an io_uring stream.
pub struct UringRead<S> {
    stream: Rc<S>,
    /// `None` only while a read is in flight (the kernel owns the buffer then).
    buf: Option<PoolBuf>,
    /// A worker buffer holding the last read's bytes, when they were waiting already.
    borrowed: Option<Vec<u8>>,
    /// Whether bytes are likely waiting already, so a non-blocking `recv(2)` is tried before
    /// a ring read: the last read filled its whole buffer. Otherwise the socket was empty
    /// after it, and a `recv(2)` now would most likely fail and cost a system call, so the
    /// ring read goes first.
    try_now: bool,
}

/// The write half of an io_uring stream.
pub struct UringWrite<S> {
    stream: Rc<S>,
    /// The connection's zero-copy sender, when the worker has one.
    zc: Option<ZcConn>,
}

impl<S: UringStream> ReadHalf for UringRead<S> {
    async fn read(&mut self) -> io::Result<usize> {
        self.release();
        let (result, buf) = match self.buf.take() {
            Some(PoolBuf::Fixed(b)) => {
                // Boxed: registered buffers are off by default, and the heap read's state
                // is what every waiting connection holds.
                let (r, b) = Box::pin(self.stream.read_fixed(b)).await;
                (r, PoolBuf::Fixed(b))
            }
            Some(PoolBuf::Heap(mut b)) => {
                if self.try_now {
                    let mut worker = readbuf::take();
                    if let Some(result) = recv_now(self.stream.as_raw_fd(), &mut worker) {
                        // Less than a whole buffer: the socket is empty now.
                        self.try_now = matches!(result, Ok(n) if n == worker.capacity());
                        self.borrowed = Some(worker);
                        self.buf = Some(PoolBuf::Heap(b));
                        return result;
                    }
                    readbuf::give(worker);
                }
                b.clear();
                let (r, mut b) = self.stream.read(b).await;
                let filled = matches!(r, Ok(n) if n == b.capacity());
                self.try_now = filled;
                if filled && b.capacity() < MAX_IDLE_READ_BYTES {
                    // The peer's requests are larger: read them whole next time. (The bytes
                    // read stay in place; `reserve` keeps them.)
                    b.reserve_exact(b.capacity());
                }
                (r, PoolBuf::Heap(b))
            }
            None => return Err(io::Error::other("read after a cancelled read")),
        };
        self.buf = Some(buf);
        result
    }

    fn filled(&self, n: usize) -> &[u8] {
        match (&self.borrowed, &self.buf) {
            (Some(b), _) => &b[..n],
            (None, Some(PoolBuf::Fixed(b))) => &b[..n],
            (None, Some(PoolBuf::Heap(b))) => &b[..n],
            (None, None) => &[],
        }
    }

    fn release(&mut self) {
        if let Some(b) = self.borrowed.take() {
            readbuf::give(b);
        }
    }
}

impl<S: UringStream> WriteHalf for UringWrite<S> {
    async fn write_all(&mut self, data: Bytes) -> io::Result<SendMode> {
        if let Some(zc) = self.zc.as_ref().filter(|zc| zc.wants(data.len())) {
            let (result, sent) = zc.send_all(self.stream.as_raw_fd(), &data).await;
            result?;
            if sent.bytes == data.len() {
                return Ok(SendMode::ZeroCopy);
            }
            // The connection fell back on the way (or the socket refused SEND_ZC).
            let mode = self.stream.write_all(data.slice(sent.bytes..)).await?;
            return Ok(if sent.bytes > 0 {
                SendMode::ZeroCopy
            } else {
                mode
            });
        }
        self.stream.write_all(data).await
    }
    fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// One non-blocking `recv(2)` into `buf`'s spare capacity: `Some` with its result when the
/// socket had bytes, an EOF or an error, `None` when it would block (then the caller arms an
/// io_uring read). Data already waiting, as with a multiplexing or pipelining peer, then costs
/// one system call instead of a submission and two wake-ups.
fn recv_now(fd: std::os::fd::RawFd, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is writable memory owned by `buf` for the duration of the call, and
    // recv(2) writes at most `spare.len()` bytes into it.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        // SAFETY: recv(2) initialised the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(n as usize) };
        return Some(Ok(n as usize));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
        _ => Some(Err(e)),
    }
}

/// The read side of a tokio socket: readiness, then a non-blocking read.
pub trait ReadySocket: 'static {
    /// Resolves when the socket may have bytes (or an EOF, or an error) to read.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>>;
    /// Reads what is there into `buf`'s spare capacity, without waiting.
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize>;
}

macro_rules! ready_socket {
    ($ty:ty) => {
        impl ReadySocket for $ty {
            async fn readable(&self) -> io::Result<()> {
                <$ty>::readable(self).await
            }
            fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
                <$ty>::try_read_buf(self, buf)
            }
        }
    };
}

ready_socket!(tokio::net::tcp::OwnedReadHalf);
ready_socket!(tokio::net::unix::OwnedReadHalf);

/// The read half of a tokio (epoll) stream: it waits for readiness with no buffer, and reads
/// into a worker buffer that it gives back once the bytes are consumed.
pub struct EpollRead<R> {
    socket: R,
    borrowed: Option<Vec<u8>>,
}

/// The write half of a tokio (epoll) stream.
pub struct EpollWrite<W>(W);

/// Both halves of a tokio TCP stream.
pub fn epoll_tcp_halves(
    stream: tokio::net::TcpStream,
) -> (
    EpollRead<tokio::net::tcp::OwnedReadHalf>,
    EpollWrite<tokio::net::tcp::OwnedWriteHalf>,
) {
    let (r, w) = stream.into_split();
    (
        EpollRead {
            socket: r,
            borrowed: None,
        },
        EpollWrite(w),
    )
}

/// Both halves of a tokio Unix stream.
pub fn epoll_unix_halves(
    stream: tokio::net::UnixStream,
) -> (
    EpollRead<tokio::net::unix::OwnedReadHalf>,
    EpollWrite<tokio::net::unix::OwnedWriteHalf>,
) {
    let (r, w) = stream.into_split();
    (
        EpollRead {
            socket: r,
            borrowed: None,
        },
        EpollWrite(w),
    )
}

impl<R: ReadySocket> ReadHalf for EpollRead<R> {
    async fn read(&mut self) -> io::Result<usize> {
        self.release();
        loop {
            self.socket.readable().await?;
            let mut buf = readbuf::take();
            match self.socket.try_read_buf(&mut buf) {
                Ok(n) => {
                    self.borrowed = Some(buf);
                    return Ok(n);
                }
                Err(e) => {
                    readbuf::give(buf);
                    if e.kind() != io::ErrorKind::WouldBlock {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn filled(&self, n: usize) -> &[u8] {
        self.borrowed.as_deref().map_or(&[], |b| &b[..n])
    }

    fn release(&mut self) {
        if let Some(b) = self.borrowed.take() {
            readbuf::give(b);
        }
    }
}

/// The read half of any `AsyncRead` without readiness (a CGI program's stdin): it owns a
/// buffer of [`readbuf::READ_BUFFER_BYTES`].
pub struct PlainRead<R> {
    reader: R,
    buf: Vec<u8>,
}

impl<R> PlainRead<R> {
    /// Wraps a reader.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(readbuf::READ_BUFFER_BYTES),
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin + 'static> ReadHalf for PlainRead<R> {
    async fn read(&mut self) -> io::Result<usize> {
        self.buf.clear();
        self.reader.read_buf(&mut self.buf).await
    }

    fn filled(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }
}

/// A write half whose socket can be shut down in both directions.
pub trait SocketHalf: tokio::io::AsyncWrite + Unpin + 'static {
    /// Shuts the whole socket down.
    fn shutdown_both(&self);
}

impl SocketHalf for tokio::net::tcp::OwnedWriteHalf {
    fn shutdown_both(&self) {
        let stream: &tokio::net::TcpStream = self.as_ref();
        let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
    }
}

impl SocketHalf for tokio::net::unix::OwnedWriteHalf {
    fn shutdown_both(&self) {
        let stream: &tokio::net::UnixStream = self.as_ref();
        let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
    }
}

impl<W: SocketHalf> WriteHalf for EpollWrite<W> {
    async fn write_all(&mut self, data: Bytes) -> io::Result<SendMode> {
        self.0.write_all(&data).await.map(|()| SendMode::Epoll)
    }
    fn shutdown(&mut self) {
        self.0.shutdown_both();
    }
}
