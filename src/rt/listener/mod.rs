//! Listening sockets: parsing listen addresses, binding them the way ringgate needs, taking
//! over sockets from systemd, and handing each worker its share as non-blocking std
//! listeners (the worker converts them on its own runtime, see [`crate::rt::accept`]).
//!
//! - TCP: one socket per worker in one SO_REUSEPORT group; a port already held by another
//!   process is an error (`listener/tcp.rs` explains how that is detected without a race).
//! - Unix: one socket shared by all workers (each gets a `dup`), mode and owner
//!   configurable, a stale socket file replaced, a live one or a non-socket refused.
//! - Inherited (systemd): one socket shared by all workers, never shut down or unlinked by
//!   ringgate, since systemd keeps it for the next start.
//!
//! This module never accepts connections.

mod addr;
mod systemd;
mod tcp;
mod unix;

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::Arc;

pub use addr::ListenAddr;
pub use systemd::take_inherited;
pub use unix::{resolve_group, resolve_user, UnixBindError, UnixPathGuard, UnixSocketOptions};

pub use crate::settings::DEFAULT_BACKLOG;

/// The protocols a listener speaks. CGI is not one: it runs on a process's stdin and stdout
/// (`crate::cgi`), never on a socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListenerProtocol {
    /// FastCGI 1.0.
    FastCgi,
    /// SCGI.
    Scgi,
}

impl ListenerProtocol {
    /// The name used in listener names, logs and systemd descriptor names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FastCgi => "fastcgi",
            Self::Scgi => "scgi",
        }
    }
}

/// One configured listener.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ListenerSpec {
    /// The protocol spoken on accepted connections.
    pub protocol: ListenerProtocol,
    /// Where to listen.
    pub addr: ListenAddr,
    /// A name for logs and metrics (`fastcgi:127.0.0.1:9000`, `scgi(fd 4)`).
    pub name: String,
}

impl ListenerSpec {
    /// A spec named `protocol:addr`.
    pub fn new(protocol: ListenerProtocol, addr: ListenAddr) -> Self {
        let name = format!("{}:{addr}", protocol.as_str());
        Self {
            protocol,
            addr,
            name,
        }
    }
}

/// A listening socket in non-blocking mode, not yet tied to a runtime.
#[derive(Debug)]
pub enum StdListener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream listener.
    Unix(UnixListener),
}

impl StdListener {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Tcp(l) => Self::Tcp(l.try_clone()?),
            Self::Unix(l) => Self::Unix(l.try_clone()?),
        })
    }

    /// The bound address as text (the real port when 0 was asked for).
    pub fn local_addr_string(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("?({e})"), |a| a.to_string()),
            Self::Unix(l) => match l.local_addr() {
                Ok(a) => {
                    use std::os::linux::net::SocketAddrExt;
                    if let Some(p) = a.as_pathname() {
                        format!("unix:{}", p.display())
                    } else if let Some(n) = a.as_abstract_name() {
                        format!("unix:@{}", String::from_utf8_lossy(n))
                    } else {
                        "unix:(unnamed)".to_owned()
                    }
                }
                Err(e) => format!("?({e})"),
            },
        }
    }
}

/// How a worker's listener relates to the other workers' ones.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sharing {
    /// This worker's own socket (a TCP SO_REUSEPORT group member): shutting it down stops
    /// only this worker's accepts.
    Own,
    /// A descriptor of a socket every worker accepts on (a Unix socket ringgate bound).
    Shared,
    /// A socket inherited from systemd, shared by every worker and kept by systemd: never
    /// shut down, only closed.
    Inherited,
}

/// One worker's share of one listener.
#[derive(Debug)]
pub struct WorkerListener {
    /// What it is.
    pub spec: Arc<ListenerSpec>,
    /// The socket (or this worker's descriptor of a shared one).
    pub listener: StdListener,
    /// Whether other workers accept on the same socket.
    pub sharing: Sharing,
}

/// Options for binding.
#[derive(Clone, Copy, Debug)]
pub struct BindOptions {
    /// `listen(2)` backlog.
    pub backlog: u32,
    /// Mode and owner of Unix socket files.
    pub unix: UnixSocketOptions,
}

impl Default for BindOptions {
    fn default() -> Self {
        Self {
            backlog: DEFAULT_BACKLOG,
            unix: UnixSocketOptions::default(),
        }
    }
}

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Someone else listens on the TCP address.
    #[error("{name}: address already in use by another process")]
    InUse {
        /// The listener's name.
        name: String,
    },
    /// Any other failure binding a TCP address.
    #[error("{name}: {source}")]
    Tcp {
        /// The listener's name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// A Unix socket could not be bound.
    #[error("{name}: {source}")]
    Unix {
        /// The listener's name.
        name: String,
        /// What went wrong.
        source: UnixBindError,
    },
    /// Duplicating a shared socket for a worker failed (out of descriptors).
    #[error("{name}: duplicating the socket for worker {worker}: {source}")]
    Dup {
        /// The listener's name.
        name: String,
        /// The worker.
        worker: usize,
        /// The OS error.
        source: io::Error,
    },
}

enum Sockets {
    PerWorker(Vec<StdListener>),
    Shared(StdListener, Sharing),
}

struct Entry {
    spec: Arc<ListenerSpec>,
    sockets: Sockets,
}

/// Every listener, bound, for `workers` workers. Holding it keeps the Unix socket files;
/// dropping it (at exit) removes the ones ringgate created.
pub struct ListenerSet {
    workers: usize,
    entries: Vec<Entry>,
    guards: Vec<UnixPathGuard>,
}

impl ListenerSet {
    /// Bind every spec for `workers` workers.
    pub fn bind(
        specs: &[ListenerSpec],
        workers: usize,
        opts: &BindOptions,
    ) -> Result<Self, ListenError> {
        let workers = workers.max(1);
        let backlog = i32::try_from(opts.backlog).unwrap_or(i32::MAX);
        let mut set = Self {
            workers,
            entries: Vec::new(),
            guards: Vec::new(),
        };
        for spec in specs {
            let name = spec.name.clone();
            let sockets = match &spec.addr {
                ListenAddr::Tcp(addr) => {
                    let group = tcp::bind_group(*addr, workers, backlog).map_err(|source| {
                        if source.kind() == io::ErrorKind::AddrInUse {
                            ListenError::InUse { name: name.clone() }
                        } else {
                            ListenError::Tcp {
                                name: name.clone(),
                                source,
                            }
                        }
                    })?;
                    Sockets::PerWorker(group.into_iter().map(StdListener::Tcp).collect())
                }
                ListenAddr::Unix(path) => {
                    let (l, guard) = unix::bind_path(path, &opts.unix, backlog)
                        .map_err(|source| ListenError::Unix { name, source })?;
                    set.guards.push(guard);
                    Sockets::Shared(StdListener::Unix(l), Sharing::Shared)
                }
                ListenAddr::UnixAbstract(n) => {
                    let l = unix::bind_abstract(n, backlog).map_err(|e| ListenError::Unix {
                        name,
                        source: UnixBindError::Io {
                            path: format!("@{n}").into(),
                            what: "bind abstract",
                            source: e,
                        },
                    })?;
                    Sockets::Shared(StdListener::Unix(l), Sharing::Shared)
                }
            };
            set.entries.push(Entry {
                spec: Arc::new(spec.clone()),
                sockets,
            });
        }
        Ok(set)
    }

    /// Add sockets inherited from systemd (shared by every worker).
    pub fn add_inherited(&mut self, inherited: Vec<(ListenerSpec, StdListener)>) {
        for (spec, l) in inherited {
            self.entries.push(Entry {
                spec: Arc::new(spec),
                sockets: Sockets::Shared(l, Sharing::Inherited),
            });
        }
    }

    /// Each listener's spec and its real bound address, for the startup log.
    pub fn describe(&self) -> Vec<(Arc<ListenerSpec>, String)> {
        self.entries
            .iter()
            .map(|e| {
                let l = match &e.sockets {
                    Sockets::PerWorker(v) => &v[0],
                    Sockets::Shared(l, _) => l,
                };
                (e.spec.clone(), l.local_addr_string())
            })
            .collect()
    }

    /// Hand out every worker's listeners: `result[i]` is worker `i`'s. Shared sockets are
    /// duplicated per worker. The returned guards remove Unix socket files on drop.
    pub fn split(self) -> Result<(Vec<Vec<WorkerListener>>, Vec<UnixPathGuard>), ListenError> {
        let mut per_worker: Vec<Vec<WorkerListener>> =
            (0..self.workers).map(|_| Vec::new()).collect();
        for entry in self.entries {
            match entry.sockets {
                Sockets::PerWorker(v) => {
                    for (i, l) in v.into_iter().enumerate() {
                        per_worker[i].push(WorkerListener {
                            spec: entry.spec.clone(),
                            listener: l,
                            sharing: Sharing::Own,
                        });
                    }
                }
                Sockets::Shared(l, sharing) => {
                    for (i, slot) in per_worker.iter_mut().enumerate().skip(1) {
                        let dup = l.try_clone().map_err(|source| ListenError::Dup {
                            name: entry.spec.name.clone(),
                            worker: i,
                            source,
                        })?;
                        slot.push(WorkerListener {
                            spec: entry.spec.clone(),
                            listener: dup,
                            sharing,
                        });
                    }
                    per_worker[0].push(WorkerListener {
                        spec: entry.spec.clone(),
                        listener: l,
                        sharing,
                    });
                }
            }
        }
        Ok((per_worker, self.guards))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_every_worker_every_listener() {
        let dir = tempfile::Builder::new()
            .prefix("ringgate-split-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("s.sock");
        let specs = [
            ListenerSpec::new(ListenerProtocol::FastCgi, "127.0.0.1:0".parse().unwrap()),
            ListenerSpec::new(ListenerProtocol::Scgi, ListenAddr::Unix(path.clone())),
        ];
        let set = ListenerSet::bind(&specs, 3, &BindOptions::default()).unwrap();
        let desc = set.describe();
        assert_eq!(desc.len(), 2);
        assert!(
            !desc[0].1.ends_with(":0"),
            "real port reported: {}",
            desc[0].1
        );
        let (per_worker, guards) = set.split().unwrap();
        assert_eq!(per_worker.len(), 3);
        for w in &per_worker {
            assert_eq!(w.len(), 2);
            assert_eq!(w[0].sharing, Sharing::Own);
            assert_eq!(w[1].sharing, Sharing::Shared);
            assert_eq!(w[1].spec.protocol, ListenerProtocol::Scgi);
        }
        assert!(path.exists());
        drop(per_worker);
        drop(guards);
        assert!(!path.exists());
    }

    #[test]
    fn in_use_port_is_a_named_error() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let specs = [ListenerSpec::new(
            ListenerProtocol::FastCgi,
            ListenAddr::Tcp(addr),
        )];
        let err = ListenerSet::bind(&specs, 2, &BindOptions::default())
            .err()
            .expect("bind must fail");
        assert!(matches!(err, ListenError::InUse { .. }));
        assert!(err.to_string().contains("already in use"), "{err}");
    }
}
