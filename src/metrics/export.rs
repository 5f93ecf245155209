//! The Prometheus side: the recorder (with the histogram buckets of [`super::names`]), its global
//! installation, and the `/metrics` endpoint.
//!
//! The endpoint ([`super::http`]) never runs on a worker: [`install`] starts a thread of its
//! own, `ringgate-metrics`, with a current-thread tokio runtime that serves it and runs the
//! recorder's upkeep. Rendering happens on that thread too, so a scrape never stalls a worker;
//! workers only touch their atomics.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use metrics::{gauge, KeyName, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::labels::IoBackend;
use super::names::{MetricKind, ALL, BUILD_INFO, IO_BACKEND};

/// How often histograms are drained into their buckets between scrapes, so their pending
/// samples cannot grow without bound.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why [`install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A global recorder was installed already.
    #[error("a metrics recorder is installed already")]
    AlreadyInstalled,
    /// The metrics address could not be bound, or the thread could not be started.
    #[error("{0}")]
    Thread(#[from] std::io::Error),
}

/// A [`PrometheusBuilder`] with ringgate's histogram buckets: [`MetricKind::Histogram`] bounds
/// for each histogram of [`ALL`], matched by full name. A histogram without buckets would be
/// rendered as a summary, which cannot be aggregated across instances.
pub fn builder() -> PrometheusBuilder {
    ALL.iter()
        .fold(PrometheusBuilder::new(), |b, d| match d.kind {
            MetricKind::Histogram(buckets) => b
                .set_buckets_for_metric(Matcher::Full(d.name.to_owned()), buckets)
                // Invariant: the bucket lists in `names` are non-empty constants (tested there).
                .expect("non-empty buckets"),
            MetricKind::Counter | MetricKind::Gauge => b,
        })
}

/// Gives the current recorder the `# HELP` text of every metric.
pub fn describe() {
    metrics::with_recorder(|r| {
        for d in ALL {
            let (name, help) = (
                KeyName::from_const_str(d.name),
                SharedString::const_str(d.help),
            );
            match d.kind {
                MetricKind::Counter => r.describe_counter(name, None, help),
                MetricKind::Gauge => r.describe_gauge(name, None, help),
                MetricKind::Histogram(_) => r.describe_histogram(name, None, help),
            }
        }
    });
}

/// Sets `ringgate_build_info{version=<crate version>} 1` on the current recorder.
pub fn set_build_info() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Sets `ringgate_io_backend{backend}` on the current recorder: 1 for `backend`, 0 for the
/// other, so a fallback to epoll shows as a change of series values rather than a new series.
pub fn set_io_backend(backend: IoBackend) {
    for b in IoBackend::ALL {
        gauge!(IO_BACKEND, "backend" => b.as_str()).set(if b == backend { 1.0 } else { 0.0 });
    }
}

/// Installs the Prometheus recorder globally, describes every metric, sets `build_info`, and,
/// if `addr` is given, serves `/metrics` and `/health` on it ([`super::http`]). Everything runs
/// on a dedicated thread, `ringgate-metrics`, with the recorder's upkeep. The address is bound
/// before this returns, so a taken port is a startup error. Call it once, before any
/// [`super::WorkerMetrics::new`], then [`set_io_backend`] once the runtime has picked one.
pub fn install(addr: Option<SocketAddr>) -> Result<MetricsHandle, InstallError> {
    let listener = addr.map(std::net::TcpListener::bind).transpose()?;
    if let Some(l) = &listener {
        l.set_nonblocking(true)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let recorder = builder().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| InstallError::AlreadyInstalled)?;
    let served = handle.clone();
    thread::Builder::new()
        .name("ringgate-metrics".into())
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let upkeep = served.clone();
                tokio::task::spawn_local(async move {
                    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
                    loop {
                        every.tick().await;
                        upkeep.run_upkeep();
                    }
                });
                match listener.map(tokio::net::TcpListener::from_std) {
                    Some(Ok(listener)) => super::http::serve(listener, served).await,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "the /metrics listener could not start");
                        std::future::pending().await
                    }
                    None => std::future::pending().await,
                }
            })
        })?;
    describe();
    set_build_info();
    Ok(MetricsHandle { prometheus: handle })
}

/// The installed recorder, for rendering the exposition without HTTP.
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
}

impl MetricsHandle {
    /// Wraps a recorder's handle (tests build their own recorder with [`builder`]).
    pub fn new(prometheus: PrometheusHandle) -> Self {
        Self { prometheus }
    }

    /// The current exposition, as GET `/metrics` would answer it.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }
}
