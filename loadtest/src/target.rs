//! Targets: parsing `fastcgi://` and `scgi://` URLs (TCP or Unix socket) and connecting to
//! them. Owns the [`Stream`] type the clients drive through readiness calls, so a pending
//! read is never dropped half-way and no socket is split behind a lock.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, Interest, Ready};
use tokio::net::{TcpStream, UnixStream};

/// The protocol a target speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// FastCGI 1.0, responder role.
    FastCgi,
    /// SCGI: one request per connection.
    Scgi,
}

/// Where a target listens.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Address {
    /// A TCP address, resolved once when the URL is parsed.
    Tcp(SocketAddr),
    /// A Unix stream socket path.
    Unix(PathBuf),
}

/// A parsed `--target`/`--compare` URL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Target {
    /// Protocol from the URL scheme.
    pub protocol: Protocol,
    /// Socket address.
    pub address: Address,
    /// The URL as given, for reports.
    pub url: String,
}

/// Why a target URL was refused.
#[derive(Debug)]
pub struct TargetError(String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| TargetError(format!("bad target {url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("expected fastcgi://... or scgi://..."))?;
        let protocol = match scheme {
            "fastcgi" | "fcgi" => Protocol::FastCgi,
            "scgi" => Protocol::Scgi,
            _ => return Err(err("scheme must be fastcgi or scgi")),
        };
        let address = if let Some(path) = rest.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(err("empty socket path"));
            }
            Address::Unix(PathBuf::from(path))
        } else {
            let hostport = rest.trim_end_matches('/');
            let addr = hostport
                .to_socket_addrs()
                .map_err(|e| err(&format!("cannot resolve {hostport:?}: {e}")))?
                .next()
                .ok_or_else(|| err("no address"))?;
            Address::Tcp(addr)
        };
        Ok(Self {
            protocol,
            address,
            url: url.to_owned(),
        })
    }
}

impl Target {
    /// Opens a connection (TCP with `TCP_NODELAY`, or Unix).
    pub async fn connect(&self) -> io::Result<Stream> {
        match &self.address {
            Address::Tcp(addr) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// `(SERVER_ADDR, SERVER_PORT)` as a front end would send them.
    pub fn server_addr_port(&self) -> (String, u16) {
        match &self.address {
            Address::Tcp(a) => (a.ip().to_string(), a.port()),
            Address::Unix(_) => ("127.0.0.1".to_owned(), 80),
        }
    }
}

/// A connected socket, driven through readiness (`ready` + `try_*`) by one task.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix stream socket.
    Unix(UnixStream),
}

impl Stream {
    /// Waits until the socket is ready for one of `interest`; cancel-safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Self::Tcp(s) => s.ready(interest).await,
            Self::Unix(s) => s.ready(interest).await,
        }
    }

    /// Reads what is there into the spare capacity of `buf` (0 = end of stream).
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_read_buf(buf),
            Self::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// Writes what the socket takes now.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_write(buf),
            Self::Unix(s) => s.try_write(buf),
        }
    }

    /// Writes all of `buf`, waiting for writability as needed.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(buf).await,
            Self::Unix(s) => s.write_all(buf).await,
        }
    }

    /// Half-closes the write side (`shutdown(SHUT_WR)`).
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown().await,
            Self::Unix(s) => s.shutdown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_four_forms() {
        let t: Target = "fastcgi://127.0.0.1:9000".parse().unwrap();
        assert_eq!(t.protocol, Protocol::FastCgi);
        assert_eq!(t.address, Address::Tcp("127.0.0.1:9000".parse().unwrap()));
        let t: Target = "fastcgi://unix:/run/php/fpm.sock".parse().unwrap();
        assert_eq!(t.address, Address::Unix("/run/php/fpm.sock".into()));
        let t: Target = "scgi://127.0.0.1:9001".parse().unwrap();
        assert_eq!(t.protocol, Protocol::Scgi);
        let t: Target = "scgi://unix:/tmp/s".parse().unwrap();
        assert_eq!(t.address, Address::Unix("/tmp/s".into()));
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in ["http://x:1", "fastcgi:/x", "scgi://unix:", "fastcgi://nope"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
