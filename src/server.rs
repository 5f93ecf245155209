//! The public server: [`Server`] assembles listeners, workers, metrics and signal handling
//! from one [`Settings`] and serves an application made by a [`HandlerFactory`], until
//! SIGTERM/SIGINT or a shutdown future the caller gives.
//!
//! Startup order matters: systemd's sockets are taken and signal handlers installed first;
//! listeners are bound before the workers start; "ready" (and sd_notify `READY=1`) comes
//! only after every worker listens. Stopping: the first signal (or the shutdown future)
//! drains (no new connections or requests, in-flight ones finish within
//! [`Timeouts::drain`](crate::channel::Timeouts::drain)); a second signal stops at once.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{BoxError, Handler, HandlerFactory};
use crate::metrics::{self as rg_metrics, IoBackend, ListenerNames, WorkerMetrics};
use crate::rt::backend::{self, Backend};
use crate::rt::conn::{self, ListenerLabels};
use crate::rt::driver::WorkerShared;
use crate::rt::listener::{
    resolve_group, resolve_user, take_inherited, BindOptions, ListenerSet, ListenerSpec,
    StdListener, UnixPathGuard, UnixSocketOptions, WorkerListener,
};
use crate::rt::notify;
use crate::rt::serve::{self, ServeOptions};
use crate::rt::shutdown::{ShutdownSignal, Signals};
use crate::rt::worker::{WorkerOptions, Workers};
use crate::settings::{Settings, SettingsError};

/// Extra time the main thread gives workers beyond the drain timeout before it aborts them.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// A FastCGI/SCGI server for one application.
///
/// ```no_run
/// use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};
/// use ringgate::{Server, Settings};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     async fn call(&self, _: http::Request<Body>) -> Result<http::Response<ResponseBody>, BoxError> {
///         Ok(text(http::StatusCode::OK, "Hello, world!\n"))
///     }
/// }
///
/// let mut settings = Settings::default();
/// settings.listeners.fastcgi = vec!["127.0.0.1:9000".parse().unwrap()];
/// Server::new(settings, |_worker| Hello).run().unwrap();
/// ```
///
/// One process runs one server at a time: the metrics recorder and the signal handlers are
/// process-wide. Call [`Server::run`] before starting threads of your own: it takes the
/// sockets systemd passes (unsetting `LISTEN_FDS`, which is not thread-safe).
pub struct Server<F> {
    settings: Settings,
    factory: F,
    application: String,
}

/// Why a [`Server`] could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The settings are invalid.
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    /// A step of the startup failed (listeners, signal handlers, the I/O backend, metrics).
    #[error("{what}: {source}")]
    Setup {
        /// The step.
        what: &'static str,
        /// What went wrong.
        source: BoxError,
    },
    /// A worker thread could not start.
    #[error("starting workers: {0}")]
    Start(BoxError),
    /// A worker stopped while the server was serving; the others were stopped.
    #[error("stopped after a worker failure")]
    WorkerFailed,
    /// Worker threads panicked (their indexes).
    #[error("worker(s) {0:?} panicked")]
    WorkerPanicked(Vec<usize>),
}

fn setup<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> ServerError {
    move |e| ServerError::Setup {
        what,
        source: e.into(),
    }
}

impl<F: HandlerFactory> Server<F> {
    /// A server for `factory`'s application with `settings`.
    pub fn new(settings: Settings, factory: F) -> Self {
        Self {
            settings,
            factory,
            application: "application".to_owned(),
        }
    }

    /// Describes the application in the "ready" log line.
    pub fn application(mut self, description: impl Into<String>) -> Self {
        self.application = description.into();
        self
    }

    /// The settings it will run with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Serves until SIGTERM or SIGINT, then drains. `Ok` after a clean drain.
    pub fn run(self) -> Result<(), ServerError> {
        self.run_until(std::future::pending())
    }

    /// Serves until SIGTERM, SIGINT or `shutdown` resolves, then drains. `shutdown` is
    /// polled on the calling thread (it need not be `Send`).
    pub fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Self {
            settings,
            factory,
            application,
        } = self;
        settings.validate()?;
        // Both before this function starts any thread (environment variables are unset;
        // signals must not be lost during startup).
        let inherited = take_inherited().map_err(setup("systemd sockets"))?;
        let mut signals = Signals::install().map_err(setup("installing signal handlers"))?;

        let resolved = backend::resolve(settings.io).map_err(setup("I/O backend"))?;
        match &resolved.fallback {
            Some(why) => tracing::warn!("io_uring unavailable, using epoll: {why}"),
            None => {
                tracing::info!(io = resolved.backend.as_str(), mode = %settings.io, "I/O backend")
            }
        }

        let bound = bind(&settings, inherited)?;

        let metrics_on = match settings.metrics.addr() {
            Some(addr) => {
                rg_metrics::install(Some(addr)).map_err(setup("metrics endpoint"))?;
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
                true
            }
            None => false,
        };
        rg_metrics::set_io_backend(match resolved.backend {
            Backend::Uring => IoBackend::IoUring,
            Backend::Epoll => IoBackend::Epoll,
        });

        let worker_opts = WorkerOptions {
            pin: settings.pin,
            io: resolved.worker_mode(),
            buffers: settings.buffers,
        };
        let serve_opts = ServeOptions {
            max_connections: settings.limits.max_connections,
            drain_timeout: settings.timeouts.drain,
        };
        let drain = settings.timeouts.drain;
        let shared = Arc::new(PerWorker {
            settings,
            factory,
            names: bound.names,
            labels: bound.labels,
            metrics_on,
        });
        let mut workers = Workers::start(&worker_opts, bound.per_worker, move |ctx| {
            let shared = shared.clone();
            async move { shared.serve(ctx, serve_opts).await }
        })
        .map_err(|e| ServerError::Start(e.into()))?;

        let uring = workers
            .backends()
            .iter()
            .filter(|b| **b == Backend::Uring)
            .count();
        let epoll = workers.len() - uring;
        tracing::info!(
            workers = workers.len(),
            uring,
            epoll,
            application = %application,
            "ready"
        );
        notify::ready(&format!(
            "ready: {} workers ({uring} io_uring, {epoll} epoll)",
            workers.len()
        ));

        let result = stop(&mut workers, &mut signals, shutdown, drain);
        drop(bound.unix_files);
        result?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The listening sockets, each worker's share, and their metric labels.
struct Bound {
    per_worker: Vec<Vec<WorkerListener>>,
    /// Removes the Unix socket files when dropped.
    unix_files: Vec<UnixPathGuard>,
    names: ListenerNames,
    labels: ListenerLabels,
}

/// Binds the configured listeners (the defaults when there are none and systemd passed
/// none) and adds the inherited ones.
fn bind(
    settings: &Settings,
    inherited: Vec<(ListenerSpec, StdListener)>,
) -> Result<Bound, ServerError> {
    let ls = &settings.listeners;
    let unix = UnixSocketOptions {
        mode: ls.socket_mode.map(|m| m.0),
        owner: match &ls.socket_owner {
            Some(u) => Some(resolve_user(u).map_err(setup("socket_owner"))?),
            None => None,
        },
        group: match &ls.socket_group {
            Some(g) => Some(resolve_group(g).map_err(setup("socket_group"))?),
            None => None,
        },
    };
    let mut specs = settings.listener_specs();
    if specs.is_empty() && inherited.is_empty() {
        tracing::info!("no listener configured; using the defaults");
        specs = Settings::default_listeners();
    }
    let opts = BindOptions {
        backlog: ls.backlog,
        unix,
    };
    let mut set = ListenerSet::bind(&specs, settings.workers, &opts).map_err(setup("listeners"))?;
    set.add_inherited(inherited);
    let mut names = ListenerNames::new();
    let mut labels = Vec::new();
    for (spec, addr) in set.describe() {
        tracing::info!(protocol = spec.protocol.as_str(), %addr, name = %spec.name, "listening");
        labels.push((spec.name.clone(), names.add(&spec.name)));
    }
    let labels = ListenerLabels::new(labels);
    let (per_worker, unix_files) = set.split().map_err(setup("listeners"))?;
    Ok(Bound {
        per_worker,
        unix_files,
        names,
        labels,
    })
}

/// Tells the service manager and the load balancers (`/health` fails from now on), then stops
/// new connections and requests on every worker.
fn begin_drain(workers: &Workers) {
    notify::stopping("draining");
    rg_metrics::http::set_draining();
    workers.drain();
}

/// Waits for a signal, `shutdown` or a worker's end, then drains (or aborts) and joins
/// the workers: a second signal or the drain timeout (plus a grace period) cuts it short.
fn stop(
    workers: &mut Workers,
    signals: &mut Signals,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<(), ServerError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let stopped = signals.wait_or(async {
        tokio::select! {
            exit = workers.next_exit() => Err(exit),
            () = &mut shutdown => Ok(()),
        }
    });
    let mut failed = false;
    match stopped {
        Ok(sig) => {
            tracing::info!(signal = sig, ?drain, "shutting down");
            begin_drain(workers);
        }
        Err(Ok(())) => {
            tracing::info!(?drain, "shutdown requested; shutting down");
            begin_drain(workers);
        }
        Err(Err(exit)) => {
            tracing::error!(?exit, "a worker stopped unexpectedly; shutting down");
            failed = true;
            workers.abort();
        }
    }
    let patience = drain + DRAIN_GRACE;
    let outcome = signals.wait_or(async {
        tokio::select! {
            p = workers.all_exited() => Some(p),
            _ = tokio::time::sleep(patience) => None,
        }
    });
    match outcome {
        Err(Some(panicked)) => failed |= panicked,
        Ok(sig) => {
            tracing::warn!(signal = sig, "second signal; stopping without waiting");
            workers.abort();
            failed |= signals.block_on(workers.all_exited());
        }
        Err(None) => {
            tracing::warn!("workers did not stop in time; aborting");
            workers.abort();
            failed |= signals.block_on(workers.all_exited());
        }
    }
    let panicked = workers.join_all();
    if !panicked.is_empty() {
        return Err(ServerError::WorkerPanicked(panicked));
    }
    if failed {
        return Err(ServerError::WorkerFailed);
    }
    Ok(())
}

/// What every worker needs to build its own per-core state.
struct PerWorker<F> {
    settings: Settings,
    factory: F,
    names: ListenerNames,
    labels: ListenerLabels,
    metrics_on: bool,
}

impl<F: HandlerFactory> PerWorker<F> {
    /// One worker's life: its handler and metric handles, then its connections until the
    /// drain ends.
    async fn serve(&self, ctx: crate::rt::worker::WorkerContext, opts: ServeOptions) {
        let index = ctx.index;
        let metrics = if self.metrics_on {
            WorkerMetrics::new(index, &self.names)
        } else {
            WorkerMetrics::disabled()
        };
        let metrics = Rc::new(metrics);
        let s = &self.settings;
        let shared = WorkerShared::new(
            self.factory.make(index),
            metrics.clone(),
            s.limits.clone(),
            s.timeouts.clone(),
        );
        tokio::task::spawn_local(follow_shutdown(ctx.shutdown.clone(), shared.clone()));
        let labels = Rc::new(self.labels.clone());
        if ctx.backend == Backend::Uring {
            let m = metrics.clone();
            let policy = s.sends.policy(s.limits.send_queue_high_water);
            if let Err(e) = ctx
                .bufpool
                .enable_zerocopy(policy, move || m.zerocopy_copied())
            {
                tracing::warn!(worker = index, "zero-copy sends unavailable: {e}");
            }
            let m = metrics.clone();
            if let Err(e) = ctx
                .bufpool
                .enable_receives(s.receives, move || m.recv_buffers_exhausted())
            {
                tracing::warn!(worker = index, "multishot receives unavailable: {e}");
            }
        }
        ctx.bufpool
            .set_on_exhausted(move || metrics.buffer_pool_exhausted());
        let report = serve::serve(ctx, opts, move |accepted, ctx| {
            debug_assert_eq!(accepted.stream.backend(), ctx.backend);
            conn::serve_connection(accepted, shared.clone(), labels.clone(), ctx.bufpool)
        })
        .await;
        tracing::debug!(worker = index, ?report, "worker stopped");
    }
}

/// Stops new requests when draining starts; ends the rest when the drain is cut short.
async fn follow_shutdown<H: Handler>(mut shutdown: ShutdownSignal, shared: Rc<WorkerShared<H>>) {
    shutdown.draining().await;
    shared.drain();
    shutdown.aborted().await;
    shared.abort_all();
}

/// Logs to stderr with `tracing-subscriber`, at the level `RUST_LOG` names (default `info`),
/// with colours on a terminal. For programs that have no logging of their own; call it once,
/// first thing in `main`.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
