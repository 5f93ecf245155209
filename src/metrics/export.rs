//! The Prometheus side: the recorder (with the histogram buckets of [`super::names`]), its global
//! installation, and the `/metrics` endpoint.
//!
//! The endpoint is the exporter crate's own HTTP listener (`http-listener` feature: hyper,
//! HTTP/1). It never runs on a worker: [`install`] builds a dedicated current-thread tokio
//! runtime, builds the exporter inside it and drives it on a thread of its own named
//! `ringgate-metrics`, together with the exporter's upkeep task. The exporter's own `install`
//! would instead spawn onto whatever runtime is current, which would put scrapes on a worker's
//! ring. Rendering happens on that thread too, so a scrape never stalls a worker; workers only
//! touch their atomics. The listener answers every path with the exposition, except `/health`,
//! which answers `OK` (Kubernetes probes use it).

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use metrics::{gauge, KeyName, SharedString};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::labels::IoBackend;
use super::names::{MetricKind, ALL, BUILD_INFO, IO_BACKEND};

/// How often histograms are drained into their buckets when nothing scrapes (no listener), so
/// their pending samples cannot grow without bound.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why [`install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The exporter could not be built (e.g. the metrics address could not be bound).
    #[error("building the Prometheus exporter: {0}")]
    Build(#[from] BuildError),
    /// A global recorder was installed already.
    #[error("a metrics recorder is installed already")]
    AlreadyInstalled,
    /// The exporter's runtime or thread could not be started.
    #[error("starting the metrics thread: {0}")]
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
/// if `addr` is given, serves the exposition on it (GET `/metrics`) from a dedicated thread.
/// Call it once, before any [`super::WorkerMetrics::new`], then [`set_io_backend`] once the
/// runtime has picked one.
pub fn install(addr: Option<SocketAddr>) -> Result<MetricsHandle, InstallError> {
    let handle = match addr {
        Some(addr) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (recorder, exporter) = {
                let _in_runtime = runtime.enter();
                builder().with_http_listener(addr).build()?
            };
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| InstallError::AlreadyInstalled)?;
            thread::Builder::new()
                .name("ringgate-metrics".into())
                .spawn(move || {
                    if let Err(e) = runtime.block_on(exporter) {
                        tracing::error!(error = ?e, "the /metrics listener stopped");
                    }
                })?;
            handle
        }
        None => {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| InstallError::AlreadyInstalled)?;
            let upkeep = handle.clone();
            thread::Builder::new()
                .name("ringgate-metrics".into())
                .spawn(move || loop {
                    thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                })?;
            handle
        }
    };
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
