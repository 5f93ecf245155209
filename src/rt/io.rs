//! Socket halves for the connection driver: io_uring streams (tokio-uring, owned buffers)
//! and plain tokio streams (epoll), TCP and Unix alike.
//!
//! An io_uring write half may also send zero-copy (`rt::zerocopy`): chunks at or above the
//! worker's threshold go through SEND_ZC until the kernel's copy report makes the connection
//! fall back; whatever the zero-copy path did not send goes the usual way.
//!
//! What a waiting connection holds: no buffer on either backend. An io_uring connection
//! keeps a multishot receive armed on the worker's receive ring ([`super::recv_ring`]), which
//! hands it kernel-filled buffers it gives back once read. Without that ring (turned off, or
//! not in this kernel), it waits for readiness (a one-shot `IORING_OP_POLL_ADD` on the
//! worker's ring), as an epoll connection does through tokio's reactor, then reads into a
//! worker buffer it gives back at once ([`super::readbuf`]). Only with registered buffers on
//! does an io_uring connection wait in a ring read into its registered buffer.
//!
//! A connection that is not reading watches for its peer's hang-up ([`ReadHalf::hung_up`]): on
//! io_uring one `IORING_OP_POLL_ADD` for `POLLHUP | POLLERR`, armed the first time the
//! connection pauses and kept until it fires or the socket is shut down (so pausing and
//! resuming never piles up polls in the kernel); on epoll, tokio's error readiness. A FIN is
//! not a hang-up (the peer may still read the responses): the engine's deadlines bound that.

use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::driver::{ReadHalf, WriteHalf};
use tokio_uring::buf::fixed::FixedBuf;

use super::readbuf;
use super::recv_ring::{Received, RingRecv};
use super::zerocopy::ZcConn;
use crate::metrics::SendMode;

/// An io_uring stream (TCP or Unix), shared by the read and the write half.
pub trait UringStream: std::os::fd::AsRawFd + 'static {
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

/// Both halves of an io_uring stream; reads wait in a ring read into `fixed` when the
/// connection has a registered buffer, else in a multishot receive on `ring`, else for
/// readiness; with `zc`, large writes go zero-copy.
pub fn uring_halves<S: UringStream>(
    stream: S,
    fixed: Option<FixedBuf>,
    ring: Option<RingRecv>,
    zc: Option<ZcConn>,
) -> (UringRead<S>, UringWrite<S>) {
    let stream = Rc::new(Socket {
        stream,
        shut_down: Cell::new(false),
    });
    let wait = match (fixed, ring) {
        (Some(b), _) => ReadWait::Fixed(Some(b)),
        (None, Some(r)) => ReadWait::Ring(r),
        (None, None) => ReadWait::Ready,
    };
    (
        UringRead {
            stream: stream.clone(),
            wait,
            borrowed: None,
            // A new connection's first bytes (its request, with a connection per request)
            // are most often there by the time it is accepted.
            try_now: true,
            hang_up: None,
        },
        UringWrite { stream, zc },
    )
}

/// An io_uring stream, shared by its two halves.
struct Socket<S> {
    stream: S,
    /// The write half has shut the socket down, which ends any receive armed on it.
    shut_down: Cell<bool>,
}

impl<S: AsRawFd> AsRawFd for Socket<S> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.as_raw_fd()
    }
}

/// How an io_uring connection waits for its next bytes.
enum ReadWait {
    /// In a multishot receive on the worker's receive ring: no system call per read, and
    /// nothing held while waiting.
    Ring(RingRecv),
    /// For readiness, through a ring poll: nothing held while waiting, the bytes then read
    /// into a worker buffer. Measured against a ring read into a buffer of the connection's
    /// own (the design before it): the same server CPU per request, and 1 KiB less per idle
    /// connection (README, "Memory per idle connection").
    Ready,
    /// In a ring read into this registered buffer (`None` while the read is in flight).
    Fixed(Option<FixedBuf>),
}

/// The read half of an io_uring stream.
pub struct UringRead<S> {
    stream: Rc<Socket<S>>,
    wait: ReadWait,
    /// The worker buffer holding the last read's bytes (readiness reads).
    borrowed: Option<Vec<u8>>,
    /// Whether bytes are likely waiting already, so a non-blocking `recv(2)` is tried before
    /// waiting (or arming a multishot receive): on a new connection, and after a read that
    /// filled the whole worker buffer. Otherwise the socket was empty after the last read,
    /// and a `recv(2)` now would most likely fail and cost a system call.
    try_now: bool,
    /// The watch for a hang-up, armed the first time the connection paused.
    hang_up: Option<std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>>>>>,
}

/// The write half of an io_uring stream.
pub struct UringWrite<S> {
    stream: Rc<Socket<S>>,
    /// The connection's zero-copy sender, when the worker has one.
    zc: Option<ZcConn>,
}

impl<S: UringStream> ReadHalf for UringRead<S> {
    async fn read(&mut self) -> io::Result<usize> {
        self.release();
        if let ReadWait::Fixed(slot) = &mut self.wait {
            let b = slot
                .take()
                .ok_or_else(|| io::Error::other("read after a cancelled read"))?;
            // Boxed: registered buffers are off by default, and the readiness wait's state
            // is what every waiting connection holds.
            let (result, b) = Box::pin(self.stream.stream.read_fixed(b)).await;
            self.wait = ReadWait::Fixed(Some(b));
            return result;
        }
        if let ReadWait::Ring(ring) = &mut self.wait {
            let fd = self.stream.as_raw_fd();
            if std::mem::take(&mut self.try_now) {
                // A new connection: read what is there without arming a receive, which a
                // connection that reads once (a connection per request) never needs.
                let mut worker = readbuf::take();
                if let Some(result) = recv_now(fd, &mut worker) {
                    self.try_now = matches!(result, Ok(n) if n == worker.capacity());
                    self.borrowed = Some(worker);
                    return result;
                }
                readbuf::give(worker);
            }
            loop {
                match std::future::poll_fn(|cx| ring.poll_recv(cx, &self.stream)).await? {
                    Received::Bytes(n) => return Ok(n),
                    Received::Starved => {
                        // No free buffer in the ring: take what the socket holds plainly;
                        // once it is empty, the next call arms the receive again.
                        let mut worker = readbuf::take();
                        if let Some(result) = recv_now(fd, &mut worker) {
                            self.borrowed = Some(worker);
                            return result;
                        }
                        readbuf::give(worker);
                    }
                }
            }
        }
        loop {
            if !self.try_now {
                readable(&self.stream).await?;
            }
            let mut worker = readbuf::take();
            if let Some(result) = recv_now(self.stream.as_raw_fd(), &mut worker) {
                // Less than a whole buffer: the socket is empty now.
                self.try_now = matches!(result, Ok(n) if n == worker.capacity());
                self.borrowed = Some(worker);
                return result;
            }
            // Readiness without bytes (or bytes taken already): wait again.
            readbuf::give(worker);
            self.try_now = false;
        }
    }

    async fn hung_up(&mut self) {
        let stream = &self.stream;
        let watch = self.hang_up.get_or_insert_with(|| {
            let mask = (libc::POLLHUP | libc::POLLERR) as u32;
            Box::pin(poll_socket(stream, mask))
        });
        match watch.as_mut().await {
            Ok(()) => {}
            // The poll failed (the socket is going away): nothing more to watch.
            Err(_) => std::future::pending().await,
        }
    }

    fn filled(&self, n: usize) -> &[u8] {
        match (&self.borrowed, &self.wait) {
            (Some(b), _) => &b[..n],
            (None, ReadWait::Fixed(Some(b))) => &b[..n],
            (None, ReadWait::Ring(r)) => r.filled(n),
            _ => &[],
        }
    }

    fn release(&mut self) {
        if let Some(b) = self.borrowed.take() {
            readbuf::give(b);
        }
        if let ReadWait::Ring(r) = &mut self.wait {
            r.release();
        }
    }
}

impl<S> Drop for UringRead<S> {
    fn drop(&mut self) {
        if let ReadWait::Ring(r) = &mut self.wait {
            if self.stream.shut_down.get() {
                // The shutdown ends the receive by itself: no cancellation needed.
                r.ending();
            }
        }
    }
}

/// What a one-shot `IORING_OP_POLL_ADD` completes with: the ready events, or an error.
struct PollDone;

impl tokio_uring::OneshotOutputTransform for PollDone {
    type Output = io::Result<()>;
    /// The stream, kept alive until the kernel completes the poll.
    type StoredData = Rc<dyn std::any::Any>;

    fn transform_oneshot_output(
        self,
        _stream: Self::StoredData,
        cqe: io_uring::cqueue::Entry,
    ) -> io::Result<()> {
        match cqe.result() {
            r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
            _ => Ok(()),
        }
    }
}

/// Waits on the worker's ring until `stream` is readable (or hung up, or in error), holding
/// no buffer. The operation owns a handle to the stream until the kernel completes it, so its
/// descriptor cannot be closed (and reused by another connection) while the poll is queued or
/// armed, even if this future is dropped first; the connection's shutdown completes it.
async fn readable<S: UringStream>(stream: &Rc<Socket<S>>) -> io::Result<()> {
    poll_socket(stream, libc::POLLIN as u32).await
}

/// One `IORING_OP_POLL_ADD` for `mask` on `stream`, which it keeps alive until the kernel
/// completes it (see [`readable`]).
fn poll_socket<S: UringStream>(
    stream: &Rc<Socket<S>>,
    mask: u32,
) -> impl std::future::Future<Output = io::Result<()>> + 'static {
    let fd = io_uring::types::Fd(stream.as_raw_fd());
    let sqe = io_uring::opcode::PollAdd::new(fd, mask).build();
    let stream: Rc<dyn std::any::Any> = stream.clone();
    tokio_uring::UnsubmittedOneshot::new(stream, PollDone, sqe).submit()
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
            let mode = self
                .stream
                .stream
                .write_all(data.slice(sent.bytes..))
                .await?;
            return Ok(if sent.bytes > 0 {
                SendMode::ZeroCopy
            } else {
                mode
            });
        }
        self.stream.stream.write_all(data).await
    }
    fn shutdown(&mut self) {
        let _ = self.stream.stream.shutdown(Shutdown::Both);
        self.stream.shut_down.set(true);
    }
}

/// One non-blocking `recv(2)` into `buf`'s spare capacity: `Some` with its result when the
/// socket had bytes, an EOF or an error, `None` when it would block (then the caller waits
/// for readiness).
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
    /// Resolves when the socket is in error (the peer reset it).
    fn errored(&self) -> impl std::future::Future<Output = ()>;
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
            async fn errored(&self) {
                match <$ty>::ready(self, tokio::io::Interest::ERROR).await {
                    Ok(_) => {}
                    // The reactor is gone: nothing more to watch.
                    Err(_) => std::future::pending().await,
                }
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

    async fn hung_up(&mut self) {
        self.socket.errored().await
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
