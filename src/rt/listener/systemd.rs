//! Sockets inherited from systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`, see sd_listen_fds(3)).
//!
//! The environment is read with the `sd-notify` crate (already a dependency for
//! `READY=1`): it checks `LISTEN_PID` against our pid, sets `FD_CLOEXEC` on the descriptors
//! and unsets the variables so no child inherits them. What is ringgate's own is mapping a
//! descriptor's name to a protocol (`FileDescriptorName=fastcgi` or `scgi`) and checking that
//! each descriptor really is a listening stream socket.

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use socket2::{Domain, SockRef, Type};

use super::{ListenAddr, ListenerProtocol, ListenerSpec, StdListener};

/// Why an inherited descriptor was rejected.
#[derive(Debug, thiserror::Error)]
pub enum InheritError {
    /// The `LISTEN_*` variables are malformed.
    #[error("socket activation: {0}")]
    Env(io::Error),
    /// A descriptor name other than `fastcgi` or `scgi`.
    #[error(
        "socket activation: fd {fd} is named `{name}`; set FileDescriptorName=fastcgi or \
         FileDescriptorName=scgi in the .socket unit"
    )]
    UnknownName {
        /// The descriptor.
        fd: RawFd,
        /// Its name.
        name: String,
    },
    /// Not a listening stream socket of a supported family.
    #[error("socket activation: fd {fd} ({name}): {why}")]
    NotAListener {
        /// The descriptor.
        fd: RawFd,
        /// Its name.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The protocol a descriptor name selects.
pub fn protocol_for_name(name: &str) -> Option<ListenerProtocol> {
    match name {
        "fastcgi" => Some(ListenerProtocol::FastCgi),
        "scgi" => Some(ListenerProtocol::Scgi),
        _ => None,
    }
}

/// Take ownership of the listening sockets systemd passed, if any.
///
/// Call this once, early in `main`, before any other thread exists: it unsets the
/// `LISTEN_*` variables (which is what makes taking ownership of the descriptors sound).
pub fn take_inherited() -> Result<Vec<(ListenerSpec, StdListener)>, InheritError> {
    let fds = sd_notify::listen_fds_with_names(true).map_err(InheritError::Env)?;
    let mut out = Vec::new();
    for (fd, name) in fds {
        let protocol = protocol_for_name(&name).ok_or_else(|| InheritError::UnknownName {
            fd,
            name: name.clone(),
        })?;
        // SAFETY: systemd passed `fd` to this process for it to own; `listen_fds_with_names`
        // verified LISTEN_PID is ours and unset the variables, so no other code in this
        // process takes ownership of the same descriptor.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let not_listener = |why: String| InheritError::NotAListener {
            fd,
            name: name.clone(),
            why,
        };
        let (listener, addr) = adopt(owned).map_err(|e| not_listener(e.to_string()))?;
        out.push((
            ListenerSpec {
                protocol,
                addr,
                name: format!("{name}(fd {fd})"),
            },
            listener,
        ));
    }
    Ok(out)
}

/// Check that `fd` is a listening stream socket and wrap it in the matching std type,
/// non-blocking.
pub(super) fn adopt(fd: OwnedFd) -> io::Result<(StdListener, ListenAddr)> {
    let sock = SockRef::from(&fd);
    if sock.r#type()? != Type::STREAM {
        return Err(io::Error::other("not a stream socket"));
    }
    if !sock.is_listener()? {
        return Err(io::Error::other("socket is not listening"));
    }
    let domain = sock.domain()?;
    let local = sock.local_addr()?;
    sock.set_nonblocking(true)?;
    if domain == Domain::IPV4 || domain == Domain::IPV6 {
        let addr = local
            .as_socket()
            .ok_or_else(|| io::Error::other("IP socket without an IP address"))?;
        Ok((
            StdListener::Tcp(TcpListener::from(fd)),
            ListenAddr::Tcp(addr),
        ))
    } else if domain == Domain::UNIX {
        let addr = if let Some(p) = local.as_pathname() {
            ListenAddr::Unix(p.to_owned())
        } else if let Some(n) = local.as_abstract_namespace() {
            ListenAddr::UnixAbstract(String::from_utf8_lossy(n).into_owned())
        } else {
            return Err(io::Error::other("unnamed Unix socket"));
        };
        Ok((StdListener::Unix(UnixListener::from(fd)), addr))
    } else {
        Err(io::Error::other(format!(
            "unsupported socket family {domain:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_protocols() {
        assert_eq!(
            protocol_for_name("fastcgi"),
            Some(ListenerProtocol::FastCgi)
        );
        assert_eq!(protocol_for_name("scgi"), Some(ListenerProtocol::Scgi));
        assert_eq!(protocol_for_name("ringgate.socket"), None);
        assert_eq!(protocol_for_name("unknown"), None);
        assert_eq!(
            protocol_for_name("cgi"),
            None,
            "CGI runs on stdio, not on a socket"
        );
    }

    #[test]
    fn adopt_checks_the_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let want = l.local_addr().unwrap();
        let (got, addr) = adopt(OwnedFd::from(l)).unwrap();
        assert!(matches!(got, StdListener::Tcp(_)));
        assert_eq!(addr, ListenAddr::Tcp(want));

        // A connected (not listening) socket is refused.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(adopt(OwnedFd::from(c)).is_err());
        // A datagram socket is refused.
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(adopt(OwnedFd::from(u)).is_err());
        // A regular file is refused.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(adopt(OwnedFd::from(f)).is_err());
    }
}
