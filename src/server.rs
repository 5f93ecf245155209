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
use crate::channel::Protocol;
use crate::metrics::{self as rg_metrics, IoBackend, ListenerNames, WorkerMetrics};
use crate::rt::backend::{self, Backend};
use crate::rt::conn::{self, ListenerLabels};
use crate::rt::driver::WorkerShared;
use crate::rt::listener::{
    resolve_group, resolve_user, take_inherited, BindOptions, ListenerProtocol, ListenerSet,
    ListenerSpec, StdListener, UnixPathGuard, UnixSocketOptions, WorkerListener,
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
    name: String,
    version: String,
    serving: Option<String>,
}

/// Why a [`Server`] could not start or did not stop cleanly.
///
/// It prints (`Display`, and `Debug` as well, so that a `main` returning
/// `Result<(), ServerError>` prints it the same way) as one line: the step, the cause and,
/// where there is one, what to do, e.g. `listeners: fastcgi:127.0.0.1:9000: address already
/// in use by another process (stop that process, or listen elsewhere: --fastcgi/--scgi ADDR,
/// or [listeners] in the settings file)`.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The settings are invalid.
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    /// A step of the startup failed (listeners, signal handlers, the I/O backend, metrics).
    #[error("{what}: {source}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Setup {
        /// The step.
        what: &'static str,
        /// What went wrong.
        source: BoxError,
        /// What to do about it, when that is known.
        hint: Option<&'static str>,
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

impl std::fmt::Debug for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn setup<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> ServerError {
    move |e| {
        let source = e.into();
        ServerError::Setup {
            what,
            hint: hint(what, &*source),
            source,
        }
    }
}

/// What to do when startup step `what` failed with `source`, where that is known.
fn hint(what: &str, source: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use crate::metrics::InstallError;
    use crate::rt::backend::BackendError;
    use crate::rt::listener::ListenError;
    if let Some(e) = source.downcast_ref::<ListenError>() {
        return Some(match e {
            ListenError::InUse { .. } => {
                "stop that process, or listen elsewhere: --fastcgi/--scgi ADDR, or [listeners] \
                 in the settings file"
            }
            _ => {
                "check the address (--fastcgi/--scgi, [listeners]) and, for a Unix socket, that \
                 its directory exists and may be written"
            }
        });
    }
    if let Some(InstallError::Thread(e)) = source.downcast_ref::<InstallError>() {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            return Some(
                "another process serves that port: serve metrics elsewhere with --metrics \
                 ADDR, or not at all with --no-metrics",
            );
        }
    }
    if let Some(BackendError::UringRequired(_)) = source.downcast_ref::<BackendError>() {
        return Some(
            "io_uring is unavailable here (kernel, seccomp profile or memlock limit): use --io \
             auto or --io epoll",
        );
    }
    match what {
        "socket_owner" | "socket_group" => Some("name an existing user or group, or a number"),
        _ => None,
    }
}

impl<F: HandlerFactory> Server<F> {
    /// A server for `factory`'s application with `settings`. Until [`Server::named`] says
    /// otherwise, the application is called after the executable's file name, with version
    /// `unknown` (a [`Program`](crate::Program) names its server itself).
    pub fn new(settings: Settings, factory: F) -> Self {
        let name = std::env::args_os()
            .next()
            .and_then(|arg0| {
                std::path::Path::new(&arg0)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "application".to_owned());
        Self {
            settings,
            factory,
            name,
            version: "unknown".to_owned(),
            serving: None,
        }
    }

    /// The application's name and version, for the "ready" log line and the
    /// `ringgate_build_info` metric (which also carries ringgate's own version).
    pub fn named(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.name = name.into();
        self.version = version.into();
        self
    }

    /// What it serves, for the "ready" log line (e.g. its routes).
    pub fn application(mut self, description: impl Into<String>) -> Self {
        self.serving = Some(description.into());
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
            name,
            version,
            serving,
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
                rg_metrics::set_build_info(&name, &version);
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
            protocols: bound.protocols,
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
            application = %name,
            version = %version,
            serving = serving.as_deref().unwrap_or("its handler"),
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
    /// The protocols the listeners speak.
    protocols: Vec<Protocol>,
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
    let mut protocols = Vec::new();
    for (spec, addr) in set.describe() {
        tracing::info!(protocol = spec.protocol.as_str(), %addr, name = %spec.name, "listening");
        labels.push((spec.name.clone(), names.add(&spec.name)));
        let protocol = match spec.protocol {
            ListenerProtocol::FastCgi => Protocol::FastCgi,
            ListenerProtocol::Scgi => Protocol::Scgi,
        };
        if !protocols.contains(&protocol) {
            protocols.push(protocol);
        }
    }
    let labels = ListenerLabels::new(labels);
    let (per_worker, unix_files) = set.split().map_err(setup("listeners"))?;
    Ok(Bound {
        per_worker,
        unix_files,
        names,
        labels,
        protocols,
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
    protocols: Vec<Protocol>,
    metrics_on: bool,
}

impl<F: HandlerFactory> PerWorker<F> {
    /// One worker's life: its handler and metric handles, then its connections until the
    /// drain ends.
    async fn serve(&self, ctx: crate::rt::worker::WorkerContext, opts: ServeOptions) {
        let index = ctx.index;
        let metrics = if self.metrics_on {
            WorkerMetrics::new(index, &self.names, &self.protocols)
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
