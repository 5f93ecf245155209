//! Worker threads: one per core (optionally pinned), each with its own runtime, its own
//! listeners and its own buffer pool; nothing shared on the hot path.
//!
//! [`Workers::start`] returns only after every worker has built its runtime, registered its
//! buffers and put its listeners on its runtime, or with the first worker's startup error
//! (after stopping the others), so `main` prints "ready" only when everything listens.

use std::future::Future;
use std::io;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::accept::Acceptor;
use super::backend::{Backend, BackendError, IoMode, WorkerRuntime};
use super::bufpool::{BufPool, BufPoolConfig};
use super::listener::WorkerListener;
use super::shutdown::{Phase, ShutdownSignal, ShutdownTrigger};

/// How to start the workers.
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Pin worker `i` to core `i` (modulo the cores this process may use).
    pub pin: bool,
    /// The backend mode each worker builds with (see
    /// [`Resolved::worker_mode`](super::backend::Resolved::worker_mode)).
    pub io: IoMode,
    /// Registered buffers per worker (uring backend only).
    pub buffers: BufPoolConfig,
}

/// What a worker's serving future gets.
pub struct WorkerContext {
    /// The worker's index, `0..workers`.
    pub index: usize,
    /// The backend it runs on.
    pub backend: Backend,
    /// Its listeners, already on its runtime.
    pub acceptors: Vec<Acceptor>,
    /// The shutdown broadcast.
    pub shutdown: ShutdownSignal,
    /// Its registered-buffer pool (disabled on epoll or when registration failed).
    pub bufpool: BufPool,
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerStartError {
    /// Its runtime could not be built.
    #[error("{0}")]
    Runtime(BackendError),
    /// A listener could not be put on its runtime.
    #[error("listener {name}: {source}")]
    Listener {
        /// The listener's name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// It died before reporting.
    #[error("worker thread died during startup")]
    Died,
}

/// Why the workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A thread could not be spawned.
    #[error("spawning worker thread {index}: {source}")]
    Spawn {
        /// The worker.
        index: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A worker failed during startup.
    #[error("worker {index}: {error}")]
    Worker {
        /// The worker.
        index: usize,
        /// What failed.
        error: WorkerStartError,
    },
}

/// A worker thread ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WorkerExit {
    /// The worker.
    pub index: usize,
    /// Whether it ended by panicking.
    pub panicked: bool,
}

/// Sends a [`WorkerExit`] when the worker thread ends, however it ends.
struct ExitNotice {
    index: usize,
    tx: mpsc::UnboundedSender<WorkerExit>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.tx.send(WorkerExit {
            index: self.index,
            panicked: std::thread::panicking(),
        });
    }
}

type StartReport = (usize, Result<Backend, WorkerStartError>);

/// The running workers.
pub struct Workers {
    threads: Vec<JoinHandle<()>>,
    exits: mpsc::UnboundedReceiver<WorkerExit>,
    exited: usize,
    trigger: ShutdownTrigger,
    backends: Vec<Backend>,
}

impl Workers {
    /// Start one thread per entry of `listeners` (worker `i` gets `listeners[i]`), each
    /// running `make(ctx)` on its own runtime until it returns.
    pub fn start<F, Fut>(
        opts: &WorkerOptions,
        listeners: Vec<Vec<WorkerListener>>,
        make: F,
    ) -> Result<Self, StartError>
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (trigger, _) = ShutdownTrigger::new();
        let (exit_tx, exits) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel::<StartReport>();
        let make = Arc::new(make);
        let cores = if opts.pin {
            let ids = core_affinity::get_core_ids().unwrap_or_default();
            if ids.is_empty() {
                tracing::warn!("cannot list CPU cores; workers are not pinned");
            }
            ids
        } else {
            Vec::new()
        };

        let mut workers = Self {
            threads: Vec::with_capacity(listeners.len()),
            exits,
            exited: 0,
            trigger,
            backends: Vec::new(),
        };
        let count = listeners.len();
        for (index, mine) in listeners.into_iter().enumerate() {
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let signal = workers.trigger.signal();
            let make = make.clone();
            let ready = ready_tx.clone();
            let notice = ExitNotice {
                index,
                tx: exit_tx.clone(),
            };
            let mode = opts.io;
            let buffers = opts.buffers;
            let spawned = std::thread::Builder::new()
                .name(format!("ringgate-w{index}"))
                .spawn(move || {
                    let _notice = notice;
                    if let Some(core) = core {
                        if !core_affinity::set_for_current(core) {
                            tracing::warn!(worker = index, core = core.id, "pinning failed");
                        }
                    }
                    run_worker(index, mode, buffers, mine, signal, ready, &*make);
                });
            match spawned {
                Ok(h) => workers.threads.push(h),
                Err(source) => {
                    workers.stop_after_failed_start();
                    return Err(StartError::Spawn { index, source });
                }
            }
        }
        drop(ready_tx);

        let mut backends = vec![Backend::Epoll; count];
        for _ in 0..count {
            match ready_rx.recv() {
                Ok((index, Ok(b))) => backends[index] = b,
                Ok((index, Err(error))) => {
                    workers.stop_after_failed_start();
                    return Err(StartError::Worker { index, error });
                }
                Err(_) => {
                    workers.stop_after_failed_start();
                    return Err(StartError::Worker {
                        index: usize::MAX,
                        error: WorkerStartError::Died,
                    });
                }
            }
        }
        workers.backends = backends;
        Ok(workers)
    }

    fn stop_after_failed_start(&mut self) {
        self.trigger.advance(Phase::Abort);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }

    /// Each worker's backend, by index.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Start draining (stop accepting, finish in-flight work).
    pub fn drain(&self) {
        self.trigger.advance(Phase::Draining);
    }

    /// Stop now.
    pub fn abort(&self) {
        self.trigger.advance(Phase::Abort);
    }

    /// The next worker to end, or `None` once all have.
    pub async fn next_exit(&mut self) -> Option<WorkerExit> {
        if self.exited == self.threads.len() {
            return None;
        }
        let e = self.exits.recv().await;
        if e.is_some() {
            self.exited += 1;
        }
        e
    }

    /// Wait for every worker to end; `true` if any panicked.
    pub async fn all_exited(&mut self) -> bool {
        let mut panicked = false;
        while let Some(e) = self.next_exit().await {
            panicked |= e.panicked;
        }
        panicked
    }

    /// Join the threads (after they have exited); the indexes of those that panicked.
    pub fn join_all(&mut self) -> Vec<usize> {
        self.threads
            .drain(..)
            .enumerate()
            .filter_map(|(i, h)| h.join().is_err().then_some(i))
            .collect()
    }
}

fn run_worker<F, Fut>(
    index: usize,
    mode: IoMode,
    buffers: BufPoolConfig,
    listeners: Vec<WorkerListener>,
    signal: ShutdownSignal,
    ready: std_mpsc::Sender<StartReport>,
    make: &F,
) where
    F: Fn(WorkerContext) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = match WorkerRuntime::new(mode) {
        Ok((rt, None)) => rt,
        Ok((rt, Some(why))) => {
            tracing::warn!(
                worker = index,
                "io_uring unavailable, this worker uses epoll: {why}"
            );
            rt
        }
        Err(e) => {
            let _ = ready.send((index, Err(WorkerStartError::Runtime(e))));
            return;
        }
    };
    let backend = rt.backend();
    rt.block_on(async move {
        let bufpool = match backend {
            Backend::Uring => {
                let (pool, err) = BufPool::register(buffers);
                if let Some(e) = err {
                    tracing::warn!(
                        worker = index,
                        count = buffers.count,
                        size = buffers.size,
                        "registered buffers unavailable, reads wait for readiness instead: {e}"
                    );
                }
                pool
            }
            Backend::Epoll => BufPool::disabled(),
        };
        let mut acceptors = Vec::with_capacity(listeners.len());
        for wl in listeners {
            let name = wl.spec.name.clone();
            match Acceptor::new(wl, backend) {
                Ok(a) => acceptors.push(a),
                Err(source) => {
                    let _ = ready.send((index, Err(WorkerStartError::Listener { name, source })));
                    return;
                }
            }
        }
        if ready.send((index, Ok(backend))).is_err() {
            return;
        }
        drop(ready);
        if signal.phase() >= Phase::Abort {
            return;
        }
        make(WorkerContext {
            index,
            backend,
            acceptors,
            shutdown: signal,
            bufpool,
        })
        .await;
    });
    // Dropping the runtime drops the remaining tasks, then cancels and waits for the ring's
    // in-flight operations.
    drop(rt);
}
