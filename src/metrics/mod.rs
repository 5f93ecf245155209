//! Metrics: every metric name in one place ([`names`]), the per-worker handles the runtime
//! updates on its hot path ([`WorkerMetrics`]), and the Prometheus recorder ([`Recorder`]:
//! the exposition crate's counters and gauges, histograms aggregated per worker) with its
//! `/metrics` endpoint ([`install`]).
//!
//! Startup order: [`install`] once (or nothing, for a process without metrics: every handle is
//! then a no-op) and [`set_build_info`], build a [`ListenerNames`] from the config, then one
//! [`WorkerMetrics::new`] per worker thread (with the protocols the listeners speak: no series
//! for the others), and [`set_io_backend`] when the runtime has chosen io_uring or epoll.
//! [`WorkerMetrics::disabled`] gives handles that do nothing even with a recorder installed, for
//! measuring what metrics cost (`benches/metrics.rs`).
//!
//! This module never parses protocols and never does I/O on a worker thread.

mod cgi;
mod export;
mod histogram;
pub mod http;
mod labels;
pub mod names;
mod worker;

pub use cgi::{CgiMetrics, CgiOutcome, CgiRefusal};
pub use export::{
    describe, install, set_build_info, set_io_backend, InstallError, MetricsHandle, Recorder,
    UPKEEP_INTERVAL,
};
pub use labels::{
    refusal_index, status_class_index, IoBackend, ListenerLabel, ListenerNames, SendMode, SlabKind,
    REFUSAL_STATUSES, STATUS_CLASSES,
};
pub use worker::WorkerMetrics;

#[cfg(test)]
mod tests;
