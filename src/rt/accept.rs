//! Accepting connections on a worker's runtime, for both backends, and the stream types a
//! connection driver gets.
//!
//! - uring backend, TCP socket of this worker's own: io_uring accept
//!   (`tokio_uring::net::TcpListener`). A pending accept is not cancelled by dropping it
//!   (the connection it later accepts would be lost), so [`Acceptor::shut_down`] shuts the
//!   socket down, which completes the pending accept with EINVAL, and the caller awaits it.
//! - uring backend, Unix sockets and sockets inherited from systemd: tokio (epoll) accepts,
//!   then the stream is handed to tokio-uring. tokio-uring's Unix listener cannot be used
//!   (its `bind` sets SO_REUSEPORT, which kernels >= 6.12.9 refuse on Unix sockets), and an
//!   inherited socket must never be shut down since systemd keeps it for the next start.
//! - epoll backend: tokio for everything.
//!
//! Streams handed to tokio-uring are put in blocking mode: io_uring retries a blocking
//! socket through its own poll, and older kernels answer EAGAIN to a plain read on an
//! `O_NONBLOCK` socket instead of waiting.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::backend::Backend;
use super::listener::{ListenerSpec, Sharing, StdListener, WorkerListener};

/// An accepted connection's stream.
pub enum Stream {
    /// TCP on io_uring.
    UringTcp(tokio_uring::net::TcpStream),
    /// Unix on io_uring.
    UringUnix(tokio_uring::net::UnixStream),
    /// TCP on epoll.
    Tcp(tokio::net::TcpStream),
    /// Unix on epoll.
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// The backend this stream's I/O goes through.
    pub fn backend(&self) -> Backend {
        match self {
            Self::UringTcp(_) | Self::UringUnix(_) => Backend::Uring,
            Self::Tcp(_) | Self::Unix(_) => Backend::Epoll,
        }
    }

    /// The raw descriptor (for logging and socket options).
    pub fn raw_fd(&self) -> i32 {
        match self {
            Self::UringTcp(s) => s.as_raw_fd(),
            Self::UringUnix(s) => s.as_raw_fd(),
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::UringTcp(_) => "UringTcp",
            Self::UringUnix(_) => "UringUnix",
            Self::Tcp(_) => "Tcp",
            Self::Unix(_) => "Unix",
        };
        write!(f, "Stream::{kind}(fd {})", self.raw_fd())
    }
}

/// An accepted connection and the listener it came from (the client's address reaches the
/// application in the CGI variables, not from the front end's socket).
#[derive(Debug)]
pub struct Accepted {
    /// The stream.
    pub stream: Stream,
    /// The listener it arrived on (its protocol and name).
    pub listener: Arc<ListenerSpec>,
}

enum Inner {
    UringTcp(tokio_uring::net::TcpListener),
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// One listener on one worker's runtime.
pub struct Acceptor {
    spec: Arc<ListenerSpec>,
    backend: Backend,
    inner: Inner,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("name", &self.spec.name)
            .field("backend", &self.backend)
            .field("uring_accept", &matches!(self.inner, Inner::UringTcp(_)))
            .finish()
    }
}

impl Acceptor {
    /// Put `wl` on the current runtime. Must be called inside the worker's runtime.
    pub fn new(wl: WorkerListener, backend: Backend) -> io::Result<Self> {
        let inner = match (wl.listener, backend, wl.sharing) {
            (StdListener::Tcp(l), Backend::Uring, Sharing::Own) => {
                Inner::UringTcp(tokio_uring::net::TcpListener::from_std(l))
            }
            (StdListener::Tcp(l), _, _) => {
                l.set_nonblocking(true)?;
                Inner::Tcp(tokio::net::TcpListener::from_std(l)?)
            }
            (StdListener::Unix(l), _, _) => {
                l.set_nonblocking(true)?;
                Inner::Unix(tokio::net::UnixListener::from_std(l)?)
            }
        };
        Ok(Self {
            spec: wl.spec,
            backend,
            inner,
        })
    }

    /// The listener's spec.
    pub fn spec(&self) -> &Arc<ListenerSpec> {
        &self.spec
    }

    /// Whether dropping a pending [`Acceptor::accept`] future loses nothing (tokio's accept).
    /// When false, stop with [`Acceptor::shut_down`] and await the pending accept.
    pub fn is_cancel_safe(&self) -> bool {
        !matches!(self.inner, Inner::UringTcp(_))
    }

    /// Stop accepting on this worker's own socket: new connections are refused and a
    /// pending io_uring accept completes (with EINVAL). A no-op for tokio-accepted sockets,
    /// which stop when dropped (they may be shared with other workers or kept by systemd).
    pub fn shut_down(&self) {
        if let Inner::UringTcp(l) = &self.inner {
            // SAFETY: `l` owns a valid listening socket for the duration of the call;
            // shutdown(2) changes socket state only, no memory is involved.
            unsafe {
                libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
    }

    /// Accept one connection, with TCP_NODELAY set on TCP streams (responses are written
    /// as whole records; Nagle's algorithm would hold back the last segment).
    pub async fn accept(&self) -> io::Result<Accepted> {
        let stream = match &self.inner {
            Inner::UringTcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Stream::UringTcp(s)
            }
            Inner::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                match self.backend {
                    Backend::Epoll => Stream::Tcp(s),
                    Backend::Uring => {
                        let s = s.into_std()?;
                        s.set_nonblocking(false)?;
                        Stream::UringTcp(tokio_uring::net::TcpStream::from_std(s))
                    }
                }
            }
            Inner::Unix(l) => {
                let (s, _) = l.accept().await?;
                match self.backend {
                    Backend::Epoll => Stream::Unix(s),
                    Backend::Uring => {
                        let s = s.into_std()?;
                        s.set_nonblocking(false)?;
                        Stream::UringUnix(tokio_uring::net::UnixStream::from_std(s))
                    }
                }
            }
        };
        Ok(Accepted {
            stream,
            listener: self.spec.clone(),
        })
    }
}

/// What to do after a failed accept.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AcceptErrorAction {
    /// The connection went away before it was accepted: try again at once.
    Retry,
    /// Out of descriptors or memory: log, pause, then try again.
    Backoff,
    /// The listener is unusable (shut down, closed): stop accepting on it.
    Stop,
}

/// Classify an accept error.
pub fn classify_accept_error(e: &io::Error) -> AcceptErrorAction {
    match e.raw_os_error() {
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::EINTR
            | libc::EAGAIN
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::EPERM,
        ) => AcceptErrorAction::Retry,
        Some(libc::EINVAL | libc::EBADF | libc::ENOTSOCK) => AcceptErrorAction::Stop,
        _ => AcceptErrorAction::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_classified() {
        let c = |n| classify_accept_error(&io::Error::from_raw_os_error(n));
        assert_eq!(c(libc::ECONNABORTED), AcceptErrorAction::Retry);
        assert_eq!(c(libc::EMFILE), AcceptErrorAction::Backoff);
        assert_eq!(c(libc::ENFILE), AcceptErrorAction::Backoff);
        assert_eq!(c(libc::ENOBUFS), AcceptErrorAction::Backoff);
        assert_eq!(c(libc::EINVAL), AcceptErrorAction::Stop);
    }
}
