//! [`WorkerMetrics`]: the metric handles one worker thread updates on its hot path.
//!
//! Every handle is registered once, in [`WorkerMetrics::new`], against the recorder current at
//! that moment, and kept in arrays indexed by the small label enums, so recording is an array
//! index plus an atomic update: no registry lookup, no hashing, no allocation. Counters and gauges
//! without a `worker` label are shared by all workers (the registry hands every worker the same
//! atomic for the same label set), so the rendered values are already process totals.
//! Histograms are per worker instead ([`super::histogram`]: each registration gets its own
//! bucket counters, summed when `/metrics` is rendered), so recording one is a bucket search and
//! two atomic adds on this worker's own cache lines, and no sample is kept.
//!
//! Every label is a small enum with an `ALL` list ([`Limit`], [`ProtocolErrorKind`], ...), so
//! every series exists (at 0) from the start and no value can grow the exposition. The
//! `protocol` label is the exception: only the protocols the process serves get series (a
//! server with FastCGI listeners only exports no `protocol="scgi"` or `protocol="cgi"` series);
//! the handles of the others are no-ops.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::labels::{
    refusal_index, status_class_index, ListenerLabel, ListenerNames, SendMode, SlabKind,
    REFUSAL_STATUSES, STATUS_CLASSES,
};
use super::names::*;
use crate::channel::{AbortCause, CloseReason, Limit, Protocol, ProtocolErrorKind, Side, Stat};

const PROTOCOLS: usize = Protocol::ALL.len();

/// The handles of one listener.
struct ListenerHandles {
    accepted: Counter,
    active: Gauge,
}

/// The metric handles one worker thread updates. Make one per worker with [`Self::new`] (or
/// [`Self::disabled`] to measure the cost of metrics), keep it on that thread (it is `Send`
/// but not `Sync`), and call its methods on the hot path.
///
/// Requests in flight are not derived from [`Stat`]s (an abort can end a request whose head never
/// arrived): the runtime reports them with [`Self::request_in_flight_delta`] when it adds or
/// removes a request-table entry.
pub struct WorkerMetrics {
    requests_started: [Counter; PROTOCOLS],
    requests_finished: [[Counter; STATUS_CLASSES.len()]; PROTOCOLS],
    request_duration: [Histogram; PROTOCOLS],
    time_to_first_byte: [Histogram; PROTOCOLS],
    requests_in_flight: Gauge,
    aborts: [Counter; AbortCause::ALL.len()],
    half_closes: [[Counter; PROTOCOLS]; Side::ALL.len()],
    producer_stalls: Counter,
    producer_stall_seconds: Histogram,
    input_stalls: Counter,
    input_stall_seconds: Histogram,
    refusals: [Counter; REFUSAL_STATUSES.len()],
    get_values: Counter,
    unknown_type: Counter,
    connection_requests_in_flight: Histogram,
    /// Per protocol, per [`ProtocolErrorKind::ALL`] index.
    protocol_errors: [Box<[Counter]>; PROTOCOLS],
    /// Per [`Limit::ALL`] index.
    limit_hits: Box<[Counter]>,
    listeners: Box<[ListenerHandles]>,
    connections_closed: [Counter; CloseReason::ALL.len()],
    received_bytes: Counter,
    sent_bytes: Counter,
    sends: [Counter; SendMode::ALL.len()],
    zerocopy_copied: Counter,
    buffer_pool_exhausted: Counter,
    recv_buffers_exhausted: Counter,
    slab_entries: [Gauge; SlabKind::ALL.len()],
    slab_capacity: [Gauge; SlabKind::ALL.len()],
}

impl WorkerMetrics {
    /// Registers every handle of worker `worker_index` (the `worker` label of the slab gauges)
    /// with the current recorder, one `listener` label per name in `listeners`, and the
    /// per-protocol ones for the protocols in `served` only (the others' are no-ops).
    pub fn new(worker_index: usize, listeners: &ListenerNames, served: &[Protocol]) -> Self {
        let worker = worker_index.to_string();
        let counter = |p: Protocol, make: &dyn Fn() -> Counter| {
            if served.contains(&p) {
                make()
            } else {
                Counter::noop()
            }
        };
        let by_protocol_hist = |name: &'static str| {
            Protocol::ALL.map(|p| {
                if served.contains(&p) {
                    histogram!(name, "protocol" => p.as_str())
                } else {
                    Histogram::noop()
                }
            })
        };
        let slab = |name: &'static str| {
            SlabKind::ALL.map(|k| gauge!(name, "worker" => worker.clone(), "kind" => k.as_str()))
        };
        Self {
            requests_started: Protocol::ALL.map(|p| {
                counter(p, &|| counter!(REQUESTS_STARTED_TOTAL, "protocol" => p.as_str()))
            }),
            requests_finished: Protocol::ALL.map(|p| {
                STATUS_CLASSES.map(|c| {
                    counter(p, &|| {
                        counter!(REQUESTS_FINISHED_TOTAL, "protocol" => p.as_str(), "status_class" => c)
                    })
                })
            }),
            request_duration: by_protocol_hist(REQUEST_DURATION_SECONDS),
            time_to_first_byte: by_protocol_hist(TIME_TO_FIRST_BYTE_SECONDS),
            requests_in_flight: gauge!(REQUESTS_IN_FLIGHT),
            aborts: AbortCause::ALL.map(|c| counter!(ABORTS_TOTAL, "cause" => c.as_str())),
            half_closes: Side::ALL.map(|s| {
                Protocol::ALL.map(|p| {
                    counter(p, &|| {
                        counter!(HALF_CLOSES_TOTAL, "side" => s.as_str(), "protocol" => p.as_str())
                    })
                })
            }),
            producer_stalls: counter!(PRODUCER_STALLS_TOTAL),
            producer_stall_seconds: histogram!(PRODUCER_STALL_SECONDS),
            input_stalls: counter!(INPUT_STALLS_TOTAL),
            input_stall_seconds: histogram!(INPUT_STALL_SECONDS),
            refusals: REFUSAL_STATUSES
                .map(|s| counter!(FASTCGI_REFUSALS_TOTAL, "protocol_status" => s)),
            get_values: counter!(FASTCGI_GET_VALUES_TOTAL),
            unknown_type: counter!(FASTCGI_UNKNOWN_TYPE_TOTAL),
            connection_requests_in_flight: histogram!(CONNECTION_REQUESTS_IN_FLIGHT),
            protocol_errors: Protocol::ALL.map(|p| {
                ProtocolErrorKind::ALL
                    .iter()
                    .map(|k| {
                        counter(p, &|| {
                            counter!(PROTOCOL_ERRORS_TOTAL, "protocol" => p.as_str(), "kind" => k.as_str())
                        })
                    })
                    .collect()
            }),
            limit_hits: Limit::ALL
                .iter()
                .map(|l| counter!(LIMIT_HITS_TOTAL, "limit" => l.as_str()))
                .collect(),
            listeners: listeners
                .iter()
                .map(|name| ListenerHandles {
                    accepted: counter!(CONNECTIONS_ACCEPTED_TOTAL, "listener" => name.to_owned()),
                    active: gauge!(CONNECTIONS_ACTIVE, "listener" => name.to_owned()),
                })
                .collect(),
            connections_closed: CloseReason::ALL
                .map(|r| counter!(CONNECTIONS_CLOSED_TOTAL, "reason" => r.as_str())),
            received_bytes: counter!(RECEIVED_BYTES_TOTAL),
            sent_bytes: counter!(SENT_BYTES_TOTAL),
            sends: SendMode::ALL.map(|m| counter!(SENDS_TOTAL, "mode" => m.as_str())),
            zerocopy_copied: counter!(ZEROCOPY_COPIED_TOTAL),
            buffer_pool_exhausted: counter!(BUFFER_POOL_EXHAUSTED_TOTAL),
            recv_buffers_exhausted: counter!(RECV_BUFFERS_EXHAUSTED_TOTAL),
            slab_entries: slab(SLAB_ENTRIES),
            slab_capacity: slab(SLAB_CAPACITY),
        }
    }

    /// Metrics off: every handle is a no-op and nothing is registered, whatever recorder is
    /// installed. Costs the same calls as [`Self::new`] minus the atomic updates, which is what
    /// the `metrics` bench compares.
    pub fn disabled() -> Self {
        Self {
            requests_started: [const { Counter::noop() }; PROTOCOLS],
            requests_finished: [const { [const { Counter::noop() }; STATUS_CLASSES.len()] };
                PROTOCOLS],
            request_duration: [const { Histogram::noop() }; PROTOCOLS],
            time_to_first_byte: [const { Histogram::noop() }; PROTOCOLS],
            requests_in_flight: Gauge::noop(),
            aborts: [const { Counter::noop() }; AbortCause::ALL.len()],
            half_closes: [const { [const { Counter::noop() }; PROTOCOLS] }; Side::ALL.len()],
            producer_stalls: Counter::noop(),
            producer_stall_seconds: Histogram::noop(),
            input_stalls: Counter::noop(),
            input_stall_seconds: Histogram::noop(),
            refusals: [const { Counter::noop() }; REFUSAL_STATUSES.len()],
            get_values: Counter::noop(),
            unknown_type: Counter::noop(),
            connection_requests_in_flight: Histogram::noop(),
            protocol_errors: Protocol::ALL.map(|_| noops(ProtocolErrorKind::ALL.len())),
            limit_hits: noops(Limit::ALL.len()),
            listeners: Box::new([]),
            connections_closed: [const { Counter::noop() }; CloseReason::ALL.len()],
            received_bytes: Counter::noop(),
            sent_bytes: Counter::noop(),
            sends: [const { Counter::noop() }; SendMode::ALL.len()],
            zerocopy_copied: Counter::noop(),
            buffer_pool_exhausted: Counter::noop(),
            recv_buffers_exhausted: Counter::noop(),
            slab_entries: [const { Gauge::noop() }; SlabKind::ALL.len()],
            slab_capacity: [const { Gauge::noop() }; SlabKind::ALL.len()],
        }
    }

    /// Counts one engine observation.
    #[inline]
    pub fn record(&self, stat: &Stat) {
        match *stat {
            Stat::RequestStarted { protocol } => {
                self.requests_started[protocol as usize].increment(1)
            }
            Stat::RequestFinished {
                protocol,
                status,
                duration,
            } => {
                let p = protocol as usize;
                self.requests_finished[p][status_class_index(status)].increment(1);
                self.request_duration[p].record(duration.as_secs_f64());
            }
            Stat::FirstByte { protocol, latency } => {
                self.time_to_first_byte[protocol as usize].record(latency.as_secs_f64());
            }
            Stat::Aborted { protocol: _, cause } => self.aborts[cause as usize].increment(1),
            Stat::HalfClose { protocol, side } => {
                self.half_closes[side as usize][protocol as usize].increment(1);
            }
            Stat::ProducerStall { duration } => {
                self.producer_stalls.increment(1);
                self.producer_stall_seconds.record(duration.as_secs_f64());
            }
            Stat::InputStall { duration } => {
                self.input_stalls.increment(1);
                self.input_stall_seconds.record(duration.as_secs_f64());
            }
            Stat::Refused { status } => self.refusals[refusal_index(status)].increment(1),
            Stat::GetValuesServed => self.get_values.increment(1),
            Stat::UnknownTypeSent => self.unknown_type.increment(1),
            Stat::ProtocolError { protocol, kind } => {
                self.protocol_errors[protocol as usize][kind as usize].increment(1);
            }
            Stat::LimitHit { limit } => self.limit_hits[limit as usize].increment(1),
            Stat::ConnectionConcurrency { in_flight } => {
                // Precision loss above 2^53 requests cannot happen: in_flight is bounded by the
                // request table.
                self.connection_requests_in_flight.record(in_flight as f64);
            }
        }
    }

    /// A connection was accepted on `listener`.
    #[inline]
    pub fn connection_accepted(&self, listener: ListenerLabel) {
        if let Some(l) = self.listener(listener) {
            l.accepted.increment(1);
            l.active.increment(1.0);
        }
    }

    /// A connection accepted on `listener` was closed for `reason`.
    #[inline]
    pub fn connection_closed(&self, listener: ListenerLabel, reason: CloseReason) {
        self.connections_closed[reason as usize].increment(1);
        if let Some(l) = self.listener(listener) {
            l.active.decrement(1.0);
        }
    }

    /// `n` bytes were read from a peer.
    #[inline]
    pub fn bytes_received(&self, n: usize) {
        self.received_bytes.increment(n as u64);
    }

    /// `n` bytes were written to a peer.
    #[inline]
    pub fn bytes_sent(&self, n: usize) {
        self.sent_bytes.increment(n as u64);
    }

    /// A send was submitted in `mode`.
    #[inline]
    pub fn send(&self, mode: SendMode) {
        self.sends[mode as usize].increment(1);
    }

    /// A zero-copy send completed with the kernel's "copied" notification.
    #[inline]
    pub fn zerocopy_copied(&self) {
        self.zerocopy_copied.increment(1);
    }

    /// The registered-buffer pool had no free buffer.
    #[inline]
    pub fn buffer_pool_exhausted(&self) {
        self.buffer_pool_exhausted.increment(1);
    }

    /// A multishot receive ended for want of a free provided buffer.
    #[inline]
    pub fn recv_buffers_exhausted(&self) {
        self.recv_buffers_exhausted.increment(1);
    }

    /// The `kind` slab of this worker now holds `entries` out of `capacity`.
    #[inline]
    pub fn set_slab(&self, kind: SlabKind, entries: usize, capacity: usize) {
        self.slab_entries[kind as usize].set(entries as f64);
        self.slab_capacity[kind as usize].set(capacity as f64);
    }

    /// Requests in flight changed by `delta`: `1.0` when a request-table entry is added,
    /// `-1.0` when one is removed (an `f64` because that is what the gauge holds).
    #[inline]
    pub fn request_in_flight_delta(&self, delta: f64) {
        self.requests_in_flight.increment(delta);
    }

    fn listener(&self, label: ListenerLabel) -> Option<&ListenerHandles> {
        // A label from another `ListenerNames` is a bug in the caller, not peer input: caught in
        // debug builds, ignored in release (only a disabled `WorkerMetrics` has no listeners).
        debug_assert!(
            self.listeners.is_empty() || label.index() < self.listeners.len(),
            "listener label {label:?} is not from the ListenerNames this WorkerMetrics was made with"
        );
        self.listeners.get(label.index())
    }
}

/// `n` handles that do nothing.
fn noops(n: usize) -> Box<[Counter]> {
    (0..n).map(|_| Counter::noop()).collect()
}
