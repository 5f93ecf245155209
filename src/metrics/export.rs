//! The Prometheus side: the recorder ([`Recorder`]: the exporter's recorder for counters and
//! gauges, [`super::histogram`] for the histograms of [`super::names`]), its global
//! installation, and the `/metrics` endpoint.
//!
//! The endpoint ([`super::http`]) never runs on a worker: [`install`] starts a thread of its
//! own, `ringgate-metrics`, with a current-thread tokio runtime that serves it and runs the
//! recorder's upkeep. Rendering happens on that thread too, so a scrape never stalls a worker;
//! workers only touch their atomics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use metrics::{gauge, Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::histogram::Histograms;
use super::labels::IoBackend;
use super::names::{MetricKind, ALL, BUILD_INFO, IO_BACKEND};

/// How often the exporter's upkeep runs between scrapes. Ringgate's own histograms
/// (`src/metrics/histogram.rs`) need none: they keep no samples. The upkeep drains the samples
/// of any histogram outside [`super::names`], which the exporter keeps until then.
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

/// The recorder: counters, gauges and their exposition are the exposition crate's
/// ([`PrometheusRecorder`]); a histogram whose name [`ALL`] defines as one is ours
/// (`src/metrics/histogram.rs`: buckets counted as values are recorded, one shard per
/// registration, nothing stored per sample). Any other histogram goes to the exporter (a
/// summary, since it has no buckets configured).
pub struct Recorder {
    prometheus: PrometheusRecorder,
    histograms: Arc<Histograms>,
}

impl Recorder {
    /// A recorder with nothing registered.
    pub fn new() -> Self {
        Self {
            prometheus: PrometheusBuilder::new().build_recorder(),
            histograms: Arc::default(),
        }
    }

    /// A handle that renders everything this recorder holds.
    pub fn handle(&self) -> MetricsHandle {
        MetricsHandle {
            prometheus: self.prometheus.handle(),
            histograms: self.histograms.clone(),
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if !self.histograms.describe(&key, &description) {
            self.prometheus.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.prometheus.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.prometheus.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.histograms
            .register(key)
            .unwrap_or_else(|| self.prometheus.register_histogram(key, metadata))
    }
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

/// Sets `ringgate_build_info{application, version, ringgate_version} 1` on the current
/// recorder: the program's name and version (the `ringgate` binary's, or an application's
/// built on the library) and the library's version.
pub fn set_build_info(application: &str, version: &str) {
    gauge!(
        BUILD_INFO,
        "application" => application.to_owned(),
        "version" => version.to_owned(),
        "ringgate_version" => env!("CARGO_PKG_VERSION"),
    )
    .set(1.0);
}

/// Sets `ringgate_io_backend{backend}` on the current recorder: 1 for `backend`, 0 for the
/// other, so a fallback to epoll shows as a change of series values rather than a new series.
pub fn set_io_backend(backend: IoBackend) {
    for b in IoBackend::ALL {
        gauge!(IO_BACKEND, "backend" => b.as_str()).set(if b == backend { 1.0 } else { 0.0 });
    }
}

/// Installs the Prometheus recorder globally, describes every metric, and, if `addr` is given, serves `/metrics` and `/health` on it ([`super::http`]). Everything runs
/// on a dedicated thread, `ringgate-metrics`, with the recorder's upkeep. The address is bound
/// before this returns, so a taken port is a startup error. Call it once, before any
/// [`super::WorkerMetrics::new`], then [`set_build_info`], and [`set_io_backend`] once the
/// runtime has picked one.
pub fn install(addr: Option<SocketAddr>) -> Result<MetricsHandle, InstallError> {
    let listener = addr.map(std::net::TcpListener::bind).transpose()?;
    if let Some(l) = &listener {
        l.set_nonblocking(true)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let recorder = Recorder::new();
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
    Ok(handle)
}

/// A [`Recorder`]'s contents, for rendering the exposition (the `/metrics` endpoint, tests).
#[derive(Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    histograms: Arc<Histograms>,
}

impl MetricsHandle {
    /// The current exposition, as GET `/metrics` answers it: the exporter's counters and gauges,
    /// then every histogram, summed over its shards.
    pub fn render(&self) -> String {
        let mut out = self.prometheus.render();
        self.histograms.render(&mut out);
        out
    }

    /// Runs the exporter's upkeep ([`UPKEEP_INTERVAL`]).
    pub fn run_upkeep(&self) {
        self.prometheus.run_upkeep();
    }
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}
