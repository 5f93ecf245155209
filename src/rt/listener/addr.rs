//! Listen addresses as written in the config and on the command line: `IP:PORT`,
//! `[IPv6]:PORT`, `unix:PATH` and `unix:@NAME` (a Linux abstract socket). Parsing only; no
//! socket is created here.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The longest Unix socket path the kernel accepts (`sun_path` is 108 bytes including the
/// terminating NUL).
pub const MAX_UNIX_PATH_BYTES: usize = 107;

/// Where a listener listens.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ListenAddr {
    /// A TCP address; port 0 asks the kernel for a free port (used by tests).
    Tcp(SocketAddr),
    /// A Unix socket at a filesystem path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket (`unix:@name`): no file, no permissions, gone when closed.
    UnixAbstract(String),
}

/// Why a listen address did not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ParseAddrError {
    /// `unix:` with nothing after it.
    #[error("`{0}`: empty Unix socket path")]
    EmptyPath(String),
    /// The Unix path is longer than `sun_path` allows.
    #[error("`{0}`: Unix socket path longer than {MAX_UNIX_PATH_BYTES} bytes")]
    PathTooLong(String),
    /// Neither `unix:...` nor an IP socket address.
    #[error(
        "`{0}`: expected IP:PORT (127.0.0.1:9000), [IPv6]:PORT ([::1]:9000), unix:PATH or \
         unix:@NAME; host names are not resolved"
    )]
    Invalid(String),
}

impl FromStr for ListenAddr {
    type Err = ParseAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("unix:") {
            if let Some(name) = rest.strip_prefix('@') {
                if name.is_empty() {
                    return Err(ParseAddrError::EmptyPath(s.to_owned()));
                }
                // The abstract name is stored after a leading NUL in `sun_path`.
                if name.len() > MAX_UNIX_PATH_BYTES {
                    return Err(ParseAddrError::PathTooLong(s.to_owned()));
                }
                return Ok(Self::UnixAbstract(name.to_owned()));
            }
            if rest.is_empty() {
                return Err(ParseAddrError::EmptyPath(s.to_owned()));
            }
            if rest.len() > MAX_UNIX_PATH_BYTES {
                return Err(ParseAddrError::PathTooLong(s.to_owned()));
            }
            return Ok(Self::Unix(PathBuf::from(rest)));
        }
        s.parse::<SocketAddr>()
            .map(Self::Tcp)
            .map_err(|_| ParseAddrError::Invalid(s.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::UnixAbstract(n) => write!(f, "unix:@{n}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "127.0.0.1:9000".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            "[::1]:9001".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("[::1]:9001".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/ringgate.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/run/ringgate.sock".into())
        );
        assert_eq!(
            "unix:@ringgate".parse::<ListenAddr>().unwrap(),
            ListenAddr::UnixAbstract("ringgate".into())
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:9000",
            "[::1]:9001",
            "unix:/tmp/x.sock",
            "unix:@abc",
        ] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for s in [
            "localhost:9000",
            "9000",
            "::1:9000",
            "127.0.0.1",
            "",
            "unix:",
            "unix:@",
        ] {
            let e = s.parse::<ListenAddr>().unwrap_err();
            assert!(!e.to_string().is_empty(), "{s}");
        }
        let long = format!("unix:/{}", "a".repeat(MAX_UNIX_PATH_BYTES));
        assert!(matches!(
            long.parse::<ListenAddr>(),
            Err(ParseAddrError::PathTooLong(_))
        ));
        let edge = format!("unix:/{}", "a".repeat(MAX_UNIX_PATH_BYTES - 1));
        assert!(edge.parse::<ListenAddr>().is_ok());
    }
}
