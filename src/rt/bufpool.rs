//! The per-worker pool of buffers registered with the kernel (io_uring fixed buffers).
//!
//! A registered buffer saves the kernel from pinning and mapping the pages on every
//! operation (`read_fixed`/`write_fixed`, available on tokio-uring's `TcpStream` and
//! `UnixStream`). The pool is small and fixed: when it is empty, a connection reads as it
//! does without the pool (waiting for readiness, then into a worker buffer), and the pool
//! counts that so the count and size can be tuned.
//!
//! Registered memory is locked memory: without CAP_IPC_LOCK it is charged to the user's
//! `RLIMIT_MEMLOCK`, which is per user, not per process (systemd's default is 8 MiB), and
//! so is each worker's ring (about 28 KiB for 256 entries on kernel 6.18). When
//! registration fails the worker runs without registered buffers and the failure is reported to
//! the caller (who logs it); it is never fatal.
//!
//! The pool is off by default: the measurements in [`super::send`] show no gain from
//! registered buffers on sockets.
//!
//! The pool also carries the worker's zero-copy ring ([`super::zerocopy`]) when zero-copy
//! sends are on, so that each connection gets its zero-copy sender with its read buffer
//! ([`BufPool::zerocopy`]).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;

use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};

use super::recv_ring::{RecvConfig, RecvRing, RingRecv};
use super::zerocopy::{ZcConn, ZcPolicy, ZcRing};

/// Default number of registered buffers per worker: none. Registered buffers showed no
/// measurable gain for socket sends or receives (see [`super::send`]), and every byte of
/// them is locked memory; set `[buffers] count` to use them.
pub const DEFAULT_BUFFER_COUNT: usize = 0;
/// Default size of one registered buffer.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
/// Most buffers one pool can hold (tokio-uring registers at most `UIO_MAXIOV`).
pub const MAX_BUFFER_COUNT: usize = 1024;
/// Largest registered buffer the kernel accepts.
pub const MAX_BUFFER_SIZE: usize = 1 << 30;

/// Count and size of a worker's registered buffers; a count of 0 disables the pool. The
/// `[buffers]` table of the settings file.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufPoolConfig {
    /// Number of buffers.
    pub count: usize,
    /// Bytes per buffer.
    #[serde(with = "crate::settings::units::bytes")]
    pub size: usize,
}

impl Default for BufPoolConfig {
    fn default() -> Self {
        Self {
            count: DEFAULT_BUFFER_COUNT,
            size: DEFAULT_BUFFER_SIZE,
        }
    }
}

struct Inner {
    pool: Option<FixedBufPool<Vec<u8>>>,
    /// Bytes per registered buffer (0 without a pool).
    size: usize,
    exhausted: Cell<u64>,
    on_exhausted: RefCell<Option<Box<dyn Fn()>>>,
    zerocopy: RefCell<Option<(ZcRing, ZcPolicy)>>,
    receives: RefCell<Option<RecvRing>>,
}

/// A worker's registered-buffer pool (cheap to clone; `!Send`, like the worker).
#[derive(Clone)]
pub struct BufPool {
    inner: Rc<Inner>,
}

impl BufPool {
    /// A pool without registered buffers (epoll backend, count 0, or registration failed).
    pub fn disabled() -> Self {
        Self::with(None, 0)
    }

    fn with(pool: Option<FixedBufPool<Vec<u8>>>, size: usize) -> Self {
        Self {
            inner: Rc::new(Inner {
                pool,
                size,
                exhausted: Cell::new(0),
                on_exhausted: RefCell::new(None),
                zerocopy: RefCell::new(None),
                receives: RefCell::new(None),
            }),
        }
    }

    /// Allocate and register `cfg.count` buffers of `cfg.size` bytes with the current
    /// thread's ring. Must run inside a tokio-uring runtime. On failure the pool is
    /// disabled and the error is returned beside it.
    pub fn register(cfg: BufPoolConfig) -> (Self, Option<io::Error>) {
        if cfg.count == 0 || cfg.size == 0 {
            return (Self::disabled(), None);
        }
        let count = cfg.count.min(MAX_BUFFER_COUNT);
        let size = cfg.size.min(MAX_BUFFER_SIZE);
        // Fully initialised buffers: `FixedBuf` only lets callers write the initialised
        // part through `DerefMut`, and its initialised length never shrinks.
        let pool = FixedBufPool::new((0..count).map(|_| vec![0u8; size]));
        match pool.register() {
            Ok(()) => (Self::with(Some(pool), size), None),
            Err(e) => (Self::disabled(), Some(e)),
        }
    }

    /// Whether registered buffers exist.
    pub fn is_registered(&self) -> bool {
        self.inner.pool.is_some()
    }

    /// A free registered buffer (full length, contents unspecified), or `None` when the
    /// pool is disabled or empty. An empty registered pool is counted.
    pub fn try_next(&self) -> Option<FixedBuf> {
        let pool = self.inner.pool.as_ref()?;
        let buf = pool.try_next(self.inner.size);
        if buf.is_none() {
            self.inner.exhausted.set(self.inner.exhausted.get() + 1);
            if let Some(f) = self.inner.on_exhausted.borrow().as_ref() {
                f();
            }
        }
        buf
    }

    /// How often a registered buffer was asked for while all were in use.
    #[cfg(test)]
    pub fn exhausted(&self) -> u64 {
        self.inner.exhausted.get()
    }

    /// Turns zero-copy sends on for this worker's TCP connections under `policy` (nothing to
    /// do when the policy is off): builds the worker's zero-copy ring, which calls
    /// `on_copied` for every send the kernel reports it copied. Must run inside the worker's
    /// io_uring runtime. On failure (no SEND_ZC in this kernel) zero-copy stays off and the
    /// error is returned.
    pub fn enable_zerocopy(
        &self,
        policy: ZcPolicy,
        on_copied: impl Fn() + 'static,
    ) -> io::Result<()> {
        if !policy.enabled() {
            return Ok(());
        }
        let ring = ZcRing::new()?;
        ring.set_on_copied(on_copied);
        *self.inner.zerocopy.borrow_mut() = Some((ring, policy));
        Ok(())
    }

    /// A new connection's zero-copy sender, when zero-copy sends are on.
    pub fn zerocopy(&self) -> Option<ZcConn> {
        let zc = self.inner.zerocopy.borrow();
        let (ring, policy) = zc.as_ref()?;
        Some(ZcConn::new(ring.clone(), *policy))
    }

    /// Turns multishot receives on for this worker's connections (nothing to do when `cfg`
    /// turns them off): builds the worker's receive ring, which calls `on_exhausted` each
    /// time a receive finds no free buffer. Must run inside the worker's io_uring runtime.
    /// On failure (no provided-buffer rings in this kernel) reads wait for readiness and the
    /// error is returned.
    pub fn enable_receives(
        &self,
        cfg: RecvConfig,
        on_exhausted: impl Fn() + 'static,
    ) -> io::Result<()> {
        if !cfg.enabled() {
            return Ok(());
        }
        let ring = RecvRing::new(cfg)?;
        ring.set_on_exhausted(on_exhausted);
        *self.inner.receives.borrow_mut() = Some(ring);
        Ok(())
    }

    /// A new connection's receive state on the worker's receive ring, when it has one.
    pub fn receiver(&self) -> Option<RingRecv> {
        Some(self.inner.receives.borrow().as_ref()?.connection())
    }

    /// Call `f` each time the registered pool is found empty (for a metric counter).
    pub fn set_on_exhausted(&self, f: impl Fn() + 'static) {
        *self.inner.on_exhausted.borrow_mut() = Some(Box::new(f));
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("registered", &self.is_registered())
            .field("size", &self.inner.size)
            .field("exhausted", &self.inner.exhausted.get())
            .field("zerocopy", &self.inner.zerocopy.borrow())
            .field("receives", &self.inner.receives.borrow())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::backend::WorkerRuntime;

    #[test]
    fn pool_hands_out_registered_buffers_then_counts_exhaustion() {
        let rt = WorkerRuntime::uring().expect("io_uring");
        rt.block_on(async {
            let (pool, err) = BufPool::register(BufPoolConfig {
                count: 2,
                size: 4096,
            });
            assert!(err.is_none(), "{err:?}");
            assert!(pool.is_registered());
            let calls = Rc::new(Cell::new(0));
            let c2 = calls.clone();
            pool.set_on_exhausted(move || c2.set(c2.get() + 1));
            let a = pool.try_next().unwrap();
            let b = pool.try_next().unwrap();
            assert_eq!(a.len(), 4096);
            assert_ne!(a.buf_index(), b.buf_index());
            assert!(pool.try_next().is_none());
            assert!(pool.try_next().is_none());
            assert_eq!(pool.exhausted(), 2);
            assert_eq!(calls.get(), 2);
            drop(a);
            assert!(pool.try_next().is_some());
        });
    }

    #[test]
    fn disabled_pool_gives_no_registered_buffers() {
        let pool = BufPool::disabled();
        assert!(!pool.is_registered());
        assert!(pool.try_next().is_none());
        assert_eq!(pool.exhausted(), 0);
    }

    #[test]
    fn zero_count_disables() {
        let rt = WorkerRuntime::uring().expect("io_uring");
        rt.block_on(async {
            let (pool, err) = BufPool::register(BufPoolConfig {
                count: 0,
                size: 4096,
            });
            assert!(err.is_none());
            assert!(!pool.is_registered());
        });
    }
}
