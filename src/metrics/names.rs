//! Every metric ringgate exports: its name, kind, label keys, help text and (for histograms)
//! buckets, in one table. Dashboards and alert rules depend on these names; `deploy/` is checked
//! against [`ALL`] by `tests/deploy_configs.rs`, so renaming one here breaks that test until the
//! dashboards follow.
//!
//! Conventions: every name starts with `ringgate_`; counters end in `_total`; durations are in
//! seconds and end in `_seconds`; byte amounts are counters ending in `_bytes_total` (never
//! histograms). A `worker` label appears only on the slab gauges: every other series is a total
//! over the worker threads (counters and gauges share one atomic per label set; histograms keep
//! one shard per worker, summed when rendered).

/// Upper bounds (seconds) of the buckets of every duration histogram: 100 µs to 30 s, roughly
/// 1-2.5-5 per decade, so p50/p99 of a fast local handler and of a slow upstream both land
/// between two close bounds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Upper bounds of the buckets of [`CONNECTION_REQUESTS_IN_FLIGHT`] (a count of requests): powers
/// of two up to 256, past any sane FastCGI multiplexing depth.
pub const COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What kind of series a metric is.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution rendered as a Prometheus histogram with these bucket upper bounds
    /// (`_bucket{le=..}`, `_sum`, `_count`).
    Histogram(&'static [f64]),
}

/// One exported metric.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    /// The full Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Label keys, in the order they are registered.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

macro_rules! metric_names {
    ($( $(#[$doc:meta])* $konst:ident = $name:literal, $kind:expr, [$($label:literal),*], $help:literal; )*) => {
        $( $(#[$doc])* pub const $konst: &str = $name; )*

        /// Every metric ringgate exports, in the order above.
        pub const ALL: &[MetricDef] = &[
            $( MetricDef { name: $konst, kind: $kind, labels: &[$($label),*], help: $help }, )*
        ];
    };
}

use MetricKind::{Counter, Gauge, Histogram};

metric_names! {
    /// Requests whose head was accepted and handed to the application. Labels: `protocol`.
    REQUESTS_STARTED_TOTAL = "ringgate_requests_started_total", Counter, ["protocol"],
        "Requests whose head was accepted and handed to the application.";
    /// Requests that ended with a complete response. Labels: `protocol`, `status_class`
    /// (`1xx`..`5xx`, or `other` for a code outside 100..=599).
    REQUESTS_FINISHED_TOTAL = "ringgate_requests_finished_total", Counter,
        ["protocol", "status_class"],
        "Requests that ended with a complete response, by status class.";
    /// Requests currently held by all workers (from arrival of the head to the end of the
    /// response or abort). No labels.
    REQUESTS_IN_FLIGHT = "ringgate_requests_in_flight", Gauge, [],
        "Requests currently in flight across all workers.";
    /// From a request head's arrival to the last response byte queued. Labels: `protocol`.
    REQUEST_DURATION_SECONDS = "ringgate_request_duration_seconds", Histogram(DURATION_BUCKETS),
        ["protocol"],
        "Time from the request head's arrival to the last response byte queued.";
    /// From a request head's arrival to the first response byte queued. Labels: `protocol`.
    TIME_TO_FIRST_BYTE_SECONDS = "ringgate_time_to_first_byte_seconds",
        Histogram(DURATION_BUCKETS), ["protocol"],
        "Time from the request head's arrival to the first response byte queued.";
    /// Requests that ended without a complete response. Labels: `cause` (see
    /// `AbortCause::as_str`).
    ABORTS_TOTAL = "ringgate_aborts_total", Counter, ["cause"],
        "Requests that ended without a complete response, by cause.";
    /// The peer closed one direction of a connection. Labels: `side` (`read`, `write`),
    /// `protocol`.
    HALF_CLOSES_TOTAL = "ringgate_half_closes_total", Counter, ["side", "protocol"],
        "Connections on which the peer closed one direction.";
    /// Times a response producer was paused because its connection's send queue was over the
    /// high-water mark. No labels.
    PRODUCER_STALLS_TOTAL = "ringgate_producer_stalls_total", Counter, [],
        "Times a response producer was paused by a full send queue.";
    /// How long each producer stall lasted. No labels.
    PRODUCER_STALL_SECONDS = "ringgate_producer_stall_seconds", Histogram(DURATION_BUCKETS), [],
        "How long response producers were paused by a full send queue.";
    /// Times a connection stopped reading because request bodies were not consumed. No labels.
    INPUT_STALLS_TOTAL = "ringgate_input_stalls_total", Counter, [],
        "Times a connection stopped reading because request bodies were not consumed.";
    /// How long each input stall lasted. No labels.
    INPUT_STALL_SECONDS = "ringgate_input_stall_seconds", Histogram(DURATION_BUCKETS), [],
        "How long connections stopped reading because request bodies were not consumed.";
    /// Connections accepted. Labels: `listener` (the configured name, e.g.
    /// `fastcgi:127.0.0.1:9000`).
    CONNECTIONS_ACCEPTED_TOTAL = "ringgate_connections_accepted_total", Counter, ["listener"],
        "Connections accepted, by listener.";
    /// Connections currently open. Labels: `listener`.
    CONNECTIONS_ACTIVE = "ringgate_connections_active", Gauge, ["listener"],
        "Connections currently open, by listener.";
    /// Connections closed. Labels: `reason` (see `CloseReason::as_str`).
    CONNECTIONS_CLOSED_TOTAL = "ringgate_connections_closed_total", Counter, ["reason"],
        "Connections closed, by reason.";
    /// FastCGI requests refused with END_REQUEST. Labels: `protocol_status` (`overloaded`,
    /// `cant_mpx_conn`, `unknown_role`, or `other` for any other status).
    FASTCGI_REFUSALS_TOTAL = "ringgate_fastcgi_refusals_total", Counter, ["protocol_status"],
        "FastCGI requests refused with END_REQUEST, by protocol status.";
    /// FastCGI GET_VALUES queries answered. No labels.
    FASTCGI_GET_VALUES_TOTAL = "ringgate_fastcgi_get_values_total", Counter, [],
        "FastCGI GET_VALUES queries answered.";
    /// FastCGI UNKNOWN_TYPE records sent. No labels.
    FASTCGI_UNKNOWN_TYPE_TOTAL = "ringgate_fastcgi_unknown_type_total", Counter, [],
        "FastCGI UNKNOWN_TYPE records sent.";
    /// Requests in flight on a connection right after one was added. No labels.
    CONNECTION_REQUESTS_IN_FLIGHT = "ringgate_connection_requests_in_flight",
        Histogram(COUNT_BUCKETS), [],
        "Requests in flight on one connection, sampled each time one is added.";
    /// The peer broke the protocol. Labels: `protocol`, `kind` (a short fixed name from the
    /// engine, e.g. `bad_version`; `other` once too many distinct kinds were seen).
    PROTOCOL_ERRORS_TOTAL = "ringgate_protocol_errors_total", Counter, ["protocol", "kind"],
        "Protocol violations by the peer, by protocol and kind.";
    /// A configured limit was hit. Labels: `limit` (the config key, e.g. `max_params_bytes`).
    LIMIT_HITS_TOTAL = "ringgate_limit_hits_total", Counter, ["limit"],
        "Times a configured limit was hit, by config key.";
    /// Bytes read from peers. No labels.
    RECEIVED_BYTES_TOTAL = "ringgate_received_bytes_total", Counter, [],
        "Bytes read from peer connections.";
    /// Bytes written to peers. No labels.
    SENT_BYTES_TOTAL = "ringgate_sent_bytes_total", Counter, [],
        "Bytes written to peer connections.";
    /// Output chunks handed to the socket, by how. Labels: `mode` (`direct`, `ring`,
    /// `epoll`, `zerocopy`; see `SendMode`).
    SENDS_TOTAL = "ringgate_sends_total", Counter, ["mode"],
        "Send operations submitted, by mode.";
    /// Zero-copy sends whose notification said the kernel copied the data after all
    /// (`IORING_NOTIF_USAGE_ZC_COPIED`; loopback and veth always copy). No labels.
    ZEROCOPY_COPIED_TOTAL = "ringgate_zerocopy_copied_total", Counter, [],
        "Zero-copy sends the kernel completed by copying.";
    /// Times a registered-buffer pool had no free buffer. No labels.
    BUFFER_POOL_EXHAUSTED_TOTAL = "ringgate_buffer_pool_exhausted_total", Counter, [],
        "Times a registered buffer pool had no free buffer.";
    /// Multishot receives that ended because the worker's provided-buffer ring had no free
    /// buffer (the connection then read plainly). No labels.
    RECV_BUFFERS_EXHAUSTED_TOTAL = "ringgate_recv_buffers_exhausted_total", Counter, [],
        "Multishot receives ended for want of a free provided buffer.";
    /// Occupied slab entries. Labels: `worker` (thread index), `kind` (`requests`,
    /// `connections`).
    SLAB_ENTRIES = "ringgate_slab_entries", Gauge, ["worker", "kind"],
        "Occupied slab entries, by worker and kind.";
    /// Slab capacity (the configured bound). Labels: `worker`, `kind`.
    SLAB_CAPACITY = "ringgate_slab_capacity", Gauge, ["worker", "kind"],
        "Slab capacity, by worker and kind.";
    /// CGI scripts running (spawned, their process group not yet ended). No labels.
    CGI_SCRIPTS_RUNNING = "ringgate_cgi_scripts_running", Gauge, [],
        "CGI scripts running across all workers.";
    /// CGI scripts spawned. No labels.
    CGI_SCRIPTS_SPAWNED_TOTAL = "ringgate_cgi_scripts_spawned_total", Counter, [],
        "CGI scripts spawned.";
    /// CGI scripts that ended. Labels: `outcome` (`ok`, `error_exit`, `signal`,
    /// `killed_timeout`, `killed_abort`, `spawn_failure`).
    CGI_SCRIPTS_ENDED_TOTAL = "ringgate_cgi_scripts_ended_total", Counter, ["outcome"],
        "CGI scripts that ended, by outcome.";
    /// CGI requests the executor answered itself instead of a script. Labels: `reason`
    /// (`not_found`, `forbidden`, `overloaded`: nothing ran; `spool_budget`: the root's
    /// request-body spool budget on the worker was spent while the request needed spool, and
    /// its script was ended before it answered).
    CGI_REFUSALS_TOTAL = "ringgate_cgi_refusals_total", Counter, ["reason"],
        "CGI requests the executor answered itself (4xx/503) instead of a script, by reason.";
    /// Time to spawn a CGI script. No labels.
    CGI_SPAWN_SECONDS = "ringgate_cgi_spawn_seconds", Histogram(DURATION_BUCKETS), [],
        "Time to spawn a CGI script.";
    /// Time a CGI request waited for a running slot. No labels.
    CGI_QUEUE_WAIT_SECONDS = "ringgate_cgi_queue_wait_seconds", Histogram(DURATION_BUCKETS), [],
        "Time CGI requests waited for a running slot.";
    /// Variables a request sent that are not passed to its CGI script (not CGI/1.1
    /// meta-variables nor `HTTP_*`, or `HTTP_PROXY`). No labels.
    CGI_ENV_DROPPED_TOTAL = "ringgate_cgi_env_dropped_total", Counter, [],
        "Request variables not passed to CGI scripts (not on the allow-list).";
    /// stderr lines of CGI scripts not logged because of the rate limit. No labels.
    CGI_STDERR_SUPPRESSED_TOTAL = "ringgate_cgi_stderr_suppressed_total", Counter, [],
        "stderr lines of CGI scripts not logged (rate limit).";
    /// Always 1. Labels: `application` and `version`, the program's (the `ringgate` binary's,
    /// or an application's built on the library), and `ringgate_version`, the library's.
    BUILD_INFO = "ringgate_build_info", Gauge, ["application", "version", "ringgate_version"],
        "Build information: the application, its version and ringgate's; the value is always 1.";
    /// 1 for the I/O backend in use, 0 for the other. Labels: `backend` (`io_uring`, `epoll`).
    IO_BACKEND = "ringgate_io_backend", Gauge, ["backend"],
        "The I/O backend in use (1) and the one not in use (0).";
}

/// The definition of the metric called `name`, if ringgate exports one.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().find(|d| d.name == name)
}

/// Whether `series` names a Prometheus series ringgate exports: a metric name, or a histogram's
/// name followed by `_bucket`, `_sum` or `_count`.
pub fn is_exported_series(series: &str) -> bool {
    if find(series).is_some() {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        series
            .strip_suffix(suffix)
            .and_then(find)
            .is_some_and(|d| matches!(d.kind, Histogram(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_are_unique() {
        for (i, d) in ALL.iter().enumerate() {
            assert!(d.name.starts_with("ringgate_"), "{}", d.name);
            assert!(
                d.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                d.name
            );
            match d.kind {
                Counter => assert!(d.name.ends_with("_total"), "{}", d.name),
                Gauge => assert!(!d.name.ends_with("_total"), "{}", d.name),
                Histogram(buckets) => {
                    assert!(!d.name.ends_with("_total"), "{}", d.name);
                    assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
                }
            }
            assert!(!d.help.is_empty());
            assert!(
                ALL[i + 1..].iter().all(|o| o.name != d.name),
                "{} twice",
                d.name
            );
        }
    }

    #[test]
    fn duration_buckets_span_100us_to_30s() {
        assert_eq!(DURATION_BUCKETS.first(), Some(&0.0001));
        assert_eq!(DURATION_BUCKETS.last(), Some(&30.0));
        assert_eq!(COUNT_BUCKETS.last(), Some(&256.0));
    }

    #[test]
    fn series_names_include_histogram_suffixes_only_for_histograms() {
        assert!(is_exported_series("ringgate_aborts_total"));
        assert!(is_exported_series(
            "ringgate_request_duration_seconds_bucket"
        ));
        assert!(is_exported_series("ringgate_producer_stall_seconds_sum"));
        assert!(!is_exported_series("ringgate_aborts_total_bucket"));
        assert!(!is_exported_series("ringgate_requests_total"));
    }
}
