//! Which I/O backend a worker runs on, and the per-worker runtime that runs `!Send`
//! futures on it.
//!
//! `--io uring` requires io_uring; `--io epoll` uses a plain tokio current-thread runtime;
//! `--io auto` (the default) uses io_uring when a ring can be created and falls back to
//! epoll otherwise, saying why (Docker's default seccomp profile answers EPERM, old kernels
//! ENOSYS, a low `RLIMIT_MEMLOCK` on kernels before 5.12 ENOMEM).
//!
//! The main thread probes once with the `io-uring` crate ([`resolve`]) before any worker
//! calls `tokio_uring::Runtime::new`: `tokio_uring::start` panics when the ring cannot be set
//! up, and `Runtime::new` leaks the tokio runtime (and its descriptors) it built before the
//! ring failed, so a failure should be found once, not once per worker.
//!
//! Both runtimes run futures inside a `LocalSet`, so [`tokio::task::spawn_local`] works on
//! either, and tokio's own I/O types work on both (a tokio-uring runtime is a tokio runtime
//! with a ring beside it).

use std::fmt;
use std::future::Future;
use std::io;
use std::str::FromStr;

use tokio::task::LocalSet;

/// Submission queue entries per ring. The completion queue is twice that, and the kernel
/// never drops completions (IORING_FEAT_NODROP), so this bounds how many operations are
/// submitted per `io_uring_enter`, not how many are in flight.
pub const RING_ENTRIES: u32 = 256;

/// The `--io` setting.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// io_uring when available, else epoll.
    #[default]
    Auto,
    /// io_uring or fail at startup.
    Uring,
    /// epoll (plain tokio) even where io_uring works.
    Epoll,
}

impl FromStr for IoMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "uring" => Ok(Self::Uring),
            "epoll" => Ok(Self::Epoll),
            _ => Err(format!("`{s}`: expected auto, uring or epoll")),
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::Epoll => "epoll",
        })
    }
}

/// The backend a worker actually runs on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Backend {
    /// tokio-uring.
    Uring,
    /// Plain tokio (epoll).
    Epoll,
}

impl Backend {
    /// The label value for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "uring",
            Self::Epoll => "epoll",
        }
    }
}

/// Why io_uring could not be used, from the error the kernel gave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnavailableCause {
    /// EPERM/EACCES: blocked by a seccomp profile (Docker's default) or by
    /// `sysctl kernel.io_uring_disabled`.
    Blocked,
    /// ENOSYS: the kernel has no io_uring.
    NotSupported,
    /// ENOMEM: not enough lockable memory (`RLIMIT_MEMLOCK`, kernels before 5.12) or kernel
    /// memory for the ring.
    NoMemory,
    /// Anything else.
    Other,
}

impl UnavailableCause {
    /// Classify a ring-creation error.
    pub fn classify(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Self::Blocked,
            Some(libc::ENOSYS) => Self::NotSupported,
            Some(libc::ENOMEM) => Self::NoMemory,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for UnavailableCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocked => {
                "io_uring is blocked (a seccomp profile such as Docker's default, or \
                 sysctl kernel.io_uring_disabled)"
            }
            Self::NotSupported => "the kernel has no io_uring",
            Self::NoMemory => "not enough lockable memory for the ring (raise RLIMIT_MEMLOCK)",
            Self::Other => "io_uring could not be set up",
        })
    }
}

/// io_uring is unavailable: the cause and the error the kernel gave.
#[derive(Debug, thiserror::Error)]
#[error("{cause}: {error}")]
pub struct Unavailable {
    /// What the error means.
    pub cause: UnavailableCause,
    /// The error.
    pub error: io::Error,
}

impl From<io::Error> for Unavailable {
    fn from(error: io::Error) -> Self {
        Self {
            cause: UnavailableCause::classify(&error),
            error,
        }
    }
}

/// A runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--io uring` and no ring.
    #[error("--io uring: {0}")]
    UringRequired(Unavailable),
    /// The tokio runtime itself failed (out of descriptors, ...).
    #[error("building the tokio runtime: {0}")]
    Runtime(io::Error),
}

/// Create (and drop) a ring, to learn whether io_uring works here.
pub fn probe_ring() -> Result<(), Unavailable> {
    io_uring::IoUring::new(RING_ENTRIES)
        .map(drop)
        .map_err(Unavailable::from)
}

/// Decide the backend for `mode` once, on the main thread: `Ok((backend, why_not_uring))`,
/// or an error for `--io uring` without io_uring. Workers then build with
/// [`WorkerRuntime::new`] and the mode this returns via [`Resolved::worker_mode`].
pub fn resolve(mode: IoMode) -> Result<Resolved, BackendError> {
    match mode {
        IoMode::Epoll => Ok(Resolved {
            mode,
            backend: Backend::Epoll,
            fallback: None,
        }),
        IoMode::Uring => probe_ring()
            .map(|()| Resolved {
                mode,
                backend: Backend::Uring,
                fallback: None,
            })
            .map_err(BackendError::UringRequired),
        IoMode::Auto => Ok(match probe_ring() {
            Ok(()) => Resolved {
                mode,
                backend: Backend::Uring,
                fallback: None,
            },
            Err(why) => Resolved {
                mode,
                backend: Backend::Epoll,
                fallback: Some(why),
            },
        }),
    }
}

/// The outcome of [`resolve`].
#[derive(Debug)]
pub struct Resolved {
    /// The mode asked for.
    pub mode: IoMode,
    /// The backend workers will use.
    pub backend: Backend,
    /// Why io_uring is not used in auto mode.
    pub fallback: Option<Unavailable>,
}

impl Resolved {
    /// The mode each worker builds with: epoll when auto already fell back (so workers do
    /// not each retry and log), else the mode asked for.
    pub fn worker_mode(&self) -> IoMode {
        match self.backend {
            Backend::Epoll => IoMode::Epoll,
            Backend::Uring => self.mode,
        }
    }
}

/// A worker thread's runtime: everything it runs is `!Send`-friendly.
pub enum WorkerRuntime {
    /// tokio-uring (a tokio current-thread runtime, a `LocalSet` and a ring).
    Uring(tokio_uring::Runtime),
    /// A tokio current-thread runtime with a `LocalSet`.
    Epoll {
        /// The runtime (I/O and time drivers enabled).
        rt: tokio::runtime::Runtime,
        /// Where `spawn_local` tasks live.
        local: LocalSet,
    },
}

impl WorkerRuntime {
    /// Build the runtime for `mode` on the current thread. In auto mode a ring failure falls
    /// back to epoll and the reason is returned beside the runtime.
    pub fn new(mode: IoMode) -> Result<(Self, Option<Unavailable>), BackendError> {
        match mode {
            IoMode::Epoll => Ok((Self::epoll().map_err(BackendError::Runtime)?, None)),
            IoMode::Uring => Self::uring()
                .map(|rt| (rt, None))
                .map_err(BackendError::UringRequired),
            IoMode::Auto => match Self::uring() {
                Ok(rt) => Ok((rt, None)),
                Err(why) => Ok((Self::epoll().map_err(BackendError::Runtime)?, Some(why))),
            },
        }
    }

    /// A tokio-uring runtime.
    ///
    /// No separate probe here: ring memory is charged to `RLIMIT_MEMLOCK` for processes
    /// without CAP_IPC_LOCK (seen on 6.18: about 28 KiB per 256-entry ring, released
    /// asynchronously after close), so a probe ring per worker would double what each worker
    /// needs. `main` probes once with [`resolve`]; if a worker's ring still fails,
    /// `Runtime::new` leaks the tokio runtime it had built (a few descriptors), once.
    pub fn uring() -> Result<Self, Unavailable> {
        let mut b = tokio_uring::builder();
        b.entries(RING_ENTRIES);
        // COOP_TASKRUN: completions that need work in this thread's context (every socket
        // read) wait for its next entry into the kernel instead of interrupting it, which cut
        // server CPU per request by about a third at 32 keep-alive connections (README,
        // "io_uring"). SINGLE_ISSUER: only this thread submits (thread per core), which
        // lets the kernel skip the ring's locking. Kernels before 6.0 refuse the pair; the
        // ring is then made without them.
        let mut flags = tokio_uring::uring_builder();
        flags.setup_coop_taskrun().setup_single_issuer();
        b.uring_builder(&flags);
        match tokio_uring::Runtime::new(&b) {
            Ok(rt) => Ok(Self::Uring(rt)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                b.uring_builder(&tokio_uring::uring_builder());
                Ok(Self::Uring(tokio_uring::Runtime::new(&b)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A plain tokio current-thread runtime.
    pub fn epoll() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self::Epoll {
            rt,
            local: LocalSet::new(),
        })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Uring(_) => Backend::Uring,
            Self::Epoll { .. } => Backend::Epoll,
        }
    }

    /// Run `fut` to completion on this thread; `spawn_local` works inside it.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self {
            Self::Uring(rt) => rt.block_on(fut),
            Self::Epoll { rt, local } => local.block_on(rt, fut),
        }
    }
}

impl fmt::Debug for WorkerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerRuntime({})", self.backend().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn errors_are_classified() {
        let c = |n| UnavailableCause::classify(&io::Error::from_raw_os_error(n));
        assert_eq!(c(libc::EPERM), UnavailableCause::Blocked);
        assert_eq!(c(libc::EACCES), UnavailableCause::Blocked);
        assert_eq!(c(libc::ENOSYS), UnavailableCause::NotSupported);
        assert_eq!(c(libc::ENOMEM), UnavailableCause::NoMemory);
        assert_eq!(c(libc::EINVAL), UnavailableCause::Other);
        let e = Unavailable::from(io::Error::from_raw_os_error(libc::EPERM));
        assert!(e.to_string().contains("seccomp"), "{e}");
    }

    #[test]
    fn io_mode_parses() {
        assert_eq!("auto".parse::<IoMode>().unwrap(), IoMode::Auto);
        assert_eq!("uring".parse::<IoMode>().unwrap(), IoMode::Uring);
        assert_eq!("epoll".parse::<IoMode>().unwrap(), IoMode::Epoll);
        assert!("iouring".parse::<IoMode>().is_err());
    }

    /// `spawn_local` of a `!Send` future and tokio networking work on both runtimes.
    fn exercise(rt: &WorkerRuntime) {
        let n = rt.block_on(async {
            let shared = Rc::new(std::cell::Cell::new(0));
            let s2 = shared.clone();
            tokio::task::spawn_local(async move { s2.set(s2.get() + 41) })
                .await
                .unwrap();
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let c = tokio::task::spawn_local(tokio::net::TcpStream::connect(addr));
            l.accept().await.unwrap();
            c.await.unwrap().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            shared.get() + 1
        });
        assert_eq!(n, 42);
    }

    #[test]
    fn forced_epoll_runs_local_tasks() {
        let (rt, why) = WorkerRuntime::new(IoMode::Epoll).unwrap();
        assert_eq!(rt.backend(), Backend::Epoll);
        assert!(why.is_none());
        exercise(&rt);
    }

    #[test]
    fn uring_runs_local_tasks() {
        let rt = WorkerRuntime::uring().expect("io_uring must work on the test machine");
        exercise(&rt);
    }
}
