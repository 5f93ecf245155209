//! A worker's serving loop: one accept loop per listener, one task per connection, the
//! per-worker connection limit, and the drain on shutdown.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::Notify;

use super::accept::{classify_accept_error, AcceptErrorAction, Accepted, Acceptor};
use super::backend::Backend;
use super::bufpool::BufPool;
use super::shutdown::ShutdownSignal;
use super::worker::WorkerContext;
use crate::rate_limited_log::RateLimitedLog;

/// Pause after an accept failed for lack of descriptors or memory, so the loop does not spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Default open connections per worker; more are closed at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = crate::channel::Limits::DEFAULT_MAX_CONNECTIONS;

/// Default time in-flight connections get to finish after a shutdown signal.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = crate::channel::Timeouts::DEFAULT_DRAIN;

/// Serving limits.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Open connections per worker; a connection beyond it is closed right after accept.
    pub max_connections: usize,
    /// How long in-flight connections may run after draining starts.
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// What a connection task gets besides its connection.
#[derive(Clone, Debug)]
pub struct ConnContext {
    /// The worker's index.
    pub worker: usize,
    /// The worker's backend.
    pub backend: Backend,
    /// The shutdown broadcast: once draining, finish in-flight requests, read no new ones.
    pub shutdown: ShutdownSignal,
    /// The worker's registered buffers.
    pub bufpool: BufPool,
}

/// How a worker's drain ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DrainReport {
    /// Connections still open when the deadline (or an abort) cut the drain short.
    pub cut: usize,
    /// Connections refused over the worker's lifetime because of `max_connections`.
    pub rejected: u64,
}

#[derive(Default)]
struct TrackerInner {
    live: Cell<usize>,
    rejected: Cell<u64>,
    idle: Notify,
}

/// Counts a worker's open connections.
#[derive(Clone, Default)]
pub struct ConnTracker {
    inner: Rc<TrackerInner>,
}

/// Held by a connection task; decrements the count when dropped.
pub struct ConnGuard {
    inner: Rc<TrackerInner>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let n = self.inner.live.get() - 1;
        self.inner.live.set(n);
        if n == 0 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl ConnTracker {
    /// Count one more connection.
    pub fn enter(&self) -> ConnGuard {
        self.inner.live.set(self.inner.live.get() + 1);
        ConnGuard {
            inner: self.inner.clone(),
        }
    }

    /// Open connections.
    pub fn live(&self) -> usize {
        self.inner.live.get()
    }

    /// Connections refused at the limit so far.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.get()
    }

    /// Resolves when no connection is open.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Serve `ctx`'s listeners until shutdown, running `handler` for every connection, then
/// drain. `handler` owns the connection; it should watch `ConnContext::shutdown`.
pub async fn serve<H, F>(ctx: WorkerContext, opts: ServeOptions, handler: H) -> DrainReport
where
    H: Fn(Accepted, ConnContext) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let WorkerContext {
        index,
        backend,
        acceptors,
        mut shutdown,
        bufpool,
    } = ctx;
    let handler = Rc::new(handler);
    let tracker = ConnTracker::default();
    let conn_ctx = ConnContext {
        worker: index,
        backend,
        shutdown: shutdown.clone(),
        bufpool,
    };
    let loops: Vec<_> = acceptors
        .into_iter()
        .map(|acc| {
            tokio::task::spawn_local(accept_loop(
                acc,
                opts.max_connections,
                tracker.clone(),
                conn_ctx.clone(),
                handler.clone(),
            ))
        })
        .collect();

    shutdown.draining().await;
    for l in loops {
        let _ = l.await;
    }
    let live = tracker.live();
    if live > 0 {
        tracing::info!(worker = index, connections = live, "draining");
    }
    let cut = tokio::select! {
        _ = tracker.idle() => 0,
        _ = tokio::time::sleep(opts.drain_timeout) => tracker.live(),
        _ = shutdown.aborted() => tracker.live(),
    };
    if cut > 0 {
        tracing::warn!(
            worker = index,
            connections = cut,
            "drain cut short; closing connections"
        );
    }
    DrainReport {
        cut,
        rejected: tracker.rejected(),
    }
}

async fn accept_loop<H, F>(
    acc: Acceptor,
    max_connections: usize,
    tracker: ConnTracker,
    ctx: ConnContext,
    handler: Rc<H>,
) where
    H: Fn(Accepted, ConnContext) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let mut shutdown = ctx.shutdown.clone();
    let mut limit_log = RateLimitedLog::default();
    let mut exhausted_log = RateLimitedLog::default();
    let dispatch = |conn: Accepted, limit_log: &mut RateLimitedLog| {
        if tracker.live() >= max_connections {
            tracker.inner.rejected.set(tracker.inner.rejected.get() + 1);
            if let Some(suppressed) = limit_log.allow(Instant::now()) {
                tracing::warn!(
                    worker = ctx.worker,
                    listener = %conn.listener.name,
                    max_connections,
                    suppressed,
                    "connection limit reached; closing new connections"
                );
            }
            drop(conn);
            return;
        }
        let guard = tracker.enter();
        // `map`, not an async block: the connection's future is not held twice.
        let fut = handler(conn, ctx.clone()).map(move |()| drop(guard));
        tokio::task::spawn_local(fut);
    };

    loop {
        let result = if acc.is_cancel_safe() {
            tokio::select! {
                biased;
                _ = shutdown.draining() => break,
                r = acc.accept() => r,
            }
        } else {
            let pending = acc.accept();
            tokio::pin!(pending);
            tokio::select! {
                biased;
                r = &mut pending => r,
                _ = shutdown.draining() => {
                    // Never drop a pending io_uring accept: shut the socket down so it
                    // completes, and serve a connection it may still have taken.
                    acc.shut_down();
                    if let Ok(conn) = pending.await {
                        dispatch(conn, &mut limit_log);
                    }
                    break;
                }
            }
        };
        match result {
            Ok(conn) => dispatch(conn, &mut limit_log),
            Err(e) => match classify_accept_error(&e) {
                AcceptErrorAction::Retry => {}
                AcceptErrorAction::Backoff => {
                    if let Some(suppressed) = exhausted_log.allow(Instant::now()) {
                        tracing::error!(
                            worker = ctx.worker,
                            listener = %acc.spec().name,
                            error = %e,
                            suppressed,
                            "accept failed; pausing"
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        _ = shutdown.draining() => break,
                    }
                }
                AcceptErrorAction::Stop => {
                    if !shutdown.is_draining() {
                        tracing::error!(
                            worker = ctx.worker,
                            listener = %acc.spec().name,
                            error = %e,
                            "listener unusable; no longer accepting on it"
                        );
                    }
                    break;
                }
            },
        }
    }
    // Our own sockets are shut down so connections waiting in the backlog are refused
    // now rather than when the process exits.
    acc.shut_down();
}
