//! The `ringgate` binary: configuration, logging, listeners, workers, signals.
//!
//! Startup order matters: systemd's sockets are taken and signal handlers installed before
//! any thread exists; listeners are bound before the workers start; "ready" (and
//! sd_notify `READY=1`) only after every worker listens. Exit status: 0 after a
//! SIGTERM/SIGINT drain, 1 for a startup or worker failure, 2 for a usage error.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use ringgate::config::{Cli, Config};
use ringgate::rt::backend::{self, Backend};
use ringgate::rt::listener::{
    resolve_group, resolve_user, take_inherited, BindOptions, ListenerSet, UnixSocketOptions,
};
use ringgate::rt::serve::{self, ServeOptions};
use ringgate::rt::shutdown::Signals;
use ringgate::rt::worker::{WorkerOptions, Workers};
use std::rc::Rc;
use std::sync::Arc;

use ringgate::app::demo::Demo;
use ringgate::metrics::{self as rg_metrics, IoBackend, ListenerNames, WorkerMetrics};
use ringgate::rt::conn::{self, ListenerLabels};
use ringgate::rt::driver::WorkerShared;
use ringgate::rt::notify;

/// mimalloc for every allocation: per-request objects are small and short-lived, and it
/// measured faster than glibc malloc on the request path (README, "Measured figures").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Extra time the main thread gives workers beyond the drain timeout before it aborts them.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            tracing::error!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(config: Config) -> Result<(), String> {
    // Both must happen before any other thread exists (environment variables are unset;
    // signals must not be lost during startup).
    let inherited = take_inherited().map_err(|e| e.to_string())?;
    let mut signals = Signals::install().map_err(|e| format!("installing signal handlers: {e}"))?;

    let resolved = backend::resolve(config.io).map_err(|e| e.to_string())?;
    match &resolved.fallback {
        Some(why) => tracing::warn!("io_uring unavailable, using epoll: {why}"),
        None => tracing::info!(io = resolved.backend.as_str(), mode = %config.io, "I/O backend"),
    }

    let unix = UnixSocketOptions {
        mode: config.socket_files.mode.map(|m| m.0),
        owner: match &config.socket_files.owner {
            Some(u) => Some(resolve_user(u).map_err(|e| format!("socket_owner {u}: {e}"))?),
            None => None,
        },
        group: match &config.socket_files.group {
            Some(g) => Some(resolve_group(g).map_err(|e| format!("socket_group {g}: {e}"))?),
            None => None,
        },
    };
    let specs = if config.listeners.is_empty() && inherited.is_empty() {
        let d = Config::default_listeners();
        tracing::info!("no listener configured; using the defaults (see --help)");
        d
    } else {
        config.listeners.clone()
    };
    let opts = BindOptions {
        backlog: config.backlog,
        unix,
    };
    let mut set = ListenerSet::bind(&specs, config.workers, &opts).map_err(|e| e.to_string())?;
    set.add_inherited(inherited);
    for (spec, addr) in set.describe() {
        tracing::info!(protocol = spec.protocol.as_str(), %addr, name = %spec.name, "listening");
    }
    let mut names = ListenerNames::new();
    let labels: Vec<(String, _)> = set
        .describe()
        .into_iter()
        .map(|(spec, _)| (spec.name.clone(), names.add(&spec.name)))
        .collect();
    let labels = ListenerLabels::new(labels);
    let (per_worker, _unix_files) = set.split().map_err(|e| e.to_string())?;

    let metrics_on = match config.metrics {
        Some(addr) => {
            rg_metrics::install(Some(addr)).map_err(|e| format!("metrics on {addr}: {e}"))?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
            true
        }
        None => false,
    };
    rg_metrics::set_io_backend(match resolved.backend {
        Backend::Uring => IoBackend::IoUring,
        Backend::Epoll => IoBackend::Epoll,
    });
    let app = Arc::new(AppSettings {
        limits: config.limits.engine(),
        timeouts: config.timeouts.engine(),
        handler_timeout: config.timeouts.handler,
        write_timeout: config.timeouts.write,
        max_in_flight: config.limits.max_in_flight,
        names,
        labels,
        metrics_on,
    });

    let worker_opts = WorkerOptions {
        workers: config.workers,
        pin: config.pin,
        io: resolved.worker_mode(),
        buffers: config.buffers,
    };
    let serve_opts = ServeOptions {
        max_connections: config.limits.max_connections,
        drain_timeout: config.timeouts.drain,
    };
    let mut workers = Workers::start(&worker_opts, per_worker, move |ctx| {
        let index = ctx.index;
        let app = app.clone();
        async move {
            let shared = app.worker(index);
            tokio::task::spawn_local(follow_shutdown(ctx.shutdown.clone(), shared.clone()));
            let labels = Rc::new(app.labels.clone());
            let metrics = shared.metrics.clone();
            ctx.bufpool
                .set_on_exhausted(move || metrics.buffer_pool_exhausted());
            let report = serve::serve(ctx, serve_opts, move |accepted, ctx| {
                conn::serve_connection(accepted, shared.clone(), labels.clone(), ctx.bufpool)
            })
            .await;
            tracing::debug!(worker = index, ?report, "worker stopped");
        }
    })
    .map_err(|e| e.to_string())?;

    let uring = workers
        .backends()
        .iter()
        .filter(|b| **b == Backend::Uring)
        .count();
    let status = format!(
        "ready: {} workers ({} io_uring, {} epoll)",
        workers.len(),
        uring,
        workers.len() - uring
    );
    tracing::info!(
        workers = workers.len(),
        uring,
        epoll = workers.len() - uring,
        application = "demo (/hello, /echo, /stream, /status/NNN, /slow, /env, /echo-env)",
        "ready"
    );
    notify::ready(&status);

    let stopped = signals.wait_or(workers.next_exit());
    let mut failed = false;
    match stopped {
        Ok(sig) => {
            tracing::info!(signal = sig, drain = ?config.timeouts.drain, "shutting down");
            notify::stopping("draining");
            workers.drain();
        }
        Err(exit) => {
            tracing::error!(?exit, "a worker stopped unexpectedly; shutting down");
            failed = true;
            workers.abort();
        }
    }
    let patience = config.timeouts.drain + DRAIN_GRACE;
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
    let panicked = workers.join();
    if !panicked.is_empty() {
        return Err(format!("worker(s) {panicked:?} panicked"));
    }
    if failed {
        return Err("stopped after a worker failure".into());
    }
    tracing::info!("stopped");
    Ok(())
}

/// What every worker needs to build its own per-core state.
struct AppSettings {
    limits: ringgate::channel::Limits,
    timeouts: ringgate::channel::Timeouts,
    handler_timeout: std::time::Duration,
    write_timeout: std::time::Duration,
    max_in_flight: usize,
    names: ListenerNames,
    labels: ListenerLabels,
    metrics_on: bool,
}

impl AppSettings {
    /// The per-worker state: the demo application and metric handles registered once.
    fn worker(&self, index: usize) -> Rc<WorkerShared<Demo>> {
        let metrics = if self.metrics_on {
            WorkerMetrics::new(index, &self.names)
        } else {
            WorkerMetrics::disabled()
        };
        WorkerShared::new(
            Demo,
            Rc::new(metrics),
            self.limits.clone(),
            self.timeouts.clone(),
            self.handler_timeout,
            self.write_timeout,
            self.max_in_flight,
        )
    }
}

/// Stops new requests when draining starts; ends the rest when the drain is cut short.
async fn follow_shutdown(
    mut shutdown: ringgate::rt::shutdown::ShutdownSignal,
    shared: Rc<WorkerShared<Demo>>,
) {
    shutdown.draining().await;
    shared.drain();
    shutdown.aborted().await;
    shared.abort_all();
}
