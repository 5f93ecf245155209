//! Socket halves for the connection driver: io_uring streams (tokio-uring, owned buffers)
//! and plain tokio streams (epoll), TCP and Unix alike.

use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::driver::{ReadHalf, WriteHalf};
use crate::metrics::SendMode;

/// An io_uring stream (TCP or Unix), shared by the read and the write half.
pub trait UringStream: 'static {
    /// Reads into `buf`'s spare capacity.
    fn read(&self, buf: Vec<u8>)
        -> impl std::future::Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Writes all of `data`.
    fn write_all(&self, data: Bytes) -> impl std::future::Future<Output = io::Result<()>>;
    /// Shuts the socket down.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

macro_rules! uring_stream {
    ($ty:ty) => {
        impl UringStream for $ty {
            async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                <$ty>::read(self, buf).await
            }
            async fn write_all(&self, data: Bytes) -> io::Result<()> {
                <$ty>::write_all(self, data).await.0
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$ty>::shutdown(self, how)
            }
        }
    };
}

uring_stream!(tokio_uring::net::TcpStream);
uring_stream!(tokio_uring::net::UnixStream);

/// Both halves of an io_uring stream.
pub fn uring_halves<S: UringStream>(stream: S) -> (UringRead<S>, UringWrite<S>) {
    let stream = Rc::new(stream);
    (UringRead(stream.clone()), UringWrite(stream))
}

/// The read half of an io_uring stream.
pub struct UringRead<S>(Rc<S>);
/// The write half of an io_uring stream.
pub struct UringWrite<S>(Rc<S>);

impl<S: UringStream> ReadHalf for UringRead<S> {
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        self.0.read(buf).await
    }
}

impl<S: UringStream> WriteHalf for UringWrite<S> {
    async fn write_all(&mut self, data: Bytes) -> io::Result<SendMode> {
        self.0.write_all(data).await.map(|()| SendMode::Plain)
    }
    fn shutdown(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// The read half of a tokio (epoll) stream, or of any `AsyncRead` such as stdin.
pub struct EpollRead<R>(R);

impl<R> EpollRead<R> {
    /// Wraps a reader.
    pub fn new(reader: R) -> Self {
        Self(reader)
    }
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
    (EpollRead(r), EpollWrite(w))
}

/// Both halves of a tokio Unix stream.
pub fn epoll_unix_halves(
    stream: tokio::net::UnixStream,
) -> (
    EpollRead<tokio::net::unix::OwnedReadHalf>,
    EpollWrite<tokio::net::unix::OwnedWriteHalf>,
) {
    let (r, w) = stream.into_split();
    (EpollRead(r), EpollWrite(w))
}

impl<R: tokio::io::AsyncRead + Unpin + 'static> ReadHalf for EpollRead<R> {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let result = self.0.read_buf(&mut buf).await;
        (result, buf)
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
        self.0.write_all(&data).await.map(|()| SendMode::Plain)
    }
    fn shutdown(&mut self) {
        self.0.shutdown_both();
    }
}
