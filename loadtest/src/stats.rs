//! Counting: the outcome of every request ([`Outcome`], [`ErrorKind`]), per-thread
//! [`Stats`] with an HDR latency histogram, and merging them at the end. Nothing here is
//! shared between threads except the [`Progress`] counters the live line reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram records exactly (longer ones are clamped to it): one hour.
pub const MAX_RECORDED_LATENCY: Duration = Duration::from_secs(3600);
/// Significant decimal digits the histogram keeps.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// Why a request failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ErrorKind {
    /// The connection could not be opened (refused, unreachable, or timed out).
    Connect,
    /// A read or write failed (reset, broken pipe).
    Io,
    /// A record came for a request id that is not in flight on the connection.
    WrongRequestId,
    /// The connection ended at a record boundary inside the STDOUT stream (no empty STDOUT
    /// record, no `END_REQUEST`).
    TruncatedStdout,
    /// STDOUT was complete (empty STDOUT record) but the connection ended before
    /// `END_REQUEST`.
    MissingEndRequest,
    /// The connection ended before any response byte for this request.
    ClosedBeforeResponse,
    /// The connection ended in the middle of a record (FastCGI) or of the head or a
    /// `Content-Length` body (SCGI).
    ClosedMidResponse,
    /// No complete response within `--timeout`.
    Timeout,
    /// The CGI response head is missing or malformed (bad `Status:` line or header line).
    BadStatusLine,
    /// The peer sent something that is not a valid FastCGI record stream for a client
    /// (bad version, a request-side record type, a short `END_REQUEST` body).
    BadRecord,
    /// The body length differs from the response's `Content-Length`.
    LengthMismatch,
    /// The body differs from what `--verify` or the scenario expects.
    VerifyFailed,
    /// `END_REQUEST` with `FCGI_CANT_MPX_CONN`.
    CantMpxConn,
    /// `END_REQUEST` with `FCGI_OVERLOADED`.
    Overloaded,
    /// `END_REQUEST` with `FCGI_UNKNOWN_ROLE`.
    UnknownRole,
    /// `END_REQUEST` with a protocol status FastCGI 1.0 does not define.
    UnknownProtocolStatus,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 16] = [
        Self::Connect,
        Self::Io,
        Self::WrongRequestId,
        Self::TruncatedStdout,
        Self::MissingEndRequest,
        Self::ClosedBeforeResponse,
        Self::ClosedMidResponse,
        Self::Timeout,
        Self::BadStatusLine,
        Self::BadRecord,
        Self::LengthMismatch,
        Self::VerifyFailed,
        Self::CantMpxConn,
        Self::Overloaded,
        Self::UnknownRole,
        Self::UnknownProtocolStatus,
    ];

    /// Name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Io => "io",
            Self::WrongRequestId => "wrong_request_id",
            Self::TruncatedStdout => "truncated_stdout",
            Self::MissingEndRequest => "missing_end_request",
            Self::ClosedBeforeResponse => "closed_before_response",
            Self::ClosedMidResponse => "closed_mid_response",
            Self::Timeout => "timeout",
            Self::BadStatusLine => "bad_status_line",
            Self::BadRecord => "bad_record",
            Self::LengthMismatch => "length_mismatch",
            Self::VerifyFailed => "verify_failed",
            Self::CantMpxConn => "cant_mpx_conn",
            Self::Overloaded => "overloaded",
            Self::UnknownRole => "unknown_role",
            Self::UnknownProtocolStatus => "unknown_protocol_status",
        }
    }

    /// The class of the error: `connect`, `io`, `protocol`, `timeout`, `refused` or `verify`.
    pub fn class(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Io => "io",
            Self::Timeout => "timeout",
            Self::CantMpxConn | Self::Overloaded | Self::UnknownRole => "refused",
            Self::LengthMismatch | Self::VerifyFailed => "verify",
            _ => "protocol",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// How one request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// A complete response with this HTTP status, `latency` after its intended send time.
    Ok {
        /// HTTP status from the CGI head.
        status: u16,
        /// From the intended send time (open loop) or the send (closed loop) to the end.
        latency: Duration,
    },
    /// A failure.
    Error(ErrorKind),
    /// Abort scenario: `END_REQUEST` arrived after our `ABORT_REQUEST`.
    AbortEnded,
    /// Abort scenario: the server closed the connection after our `ABORT_REQUEST`.
    AbortClosed,
    /// Disconnect scenario: we closed the connection mid-response, as planned.
    Disconnected,
    /// Dropped by the client because another request on the same connection failed or
    /// timed out (the connection is closed then; its other requests cannot finish).
    Cancelled,
}

/// Live counters the progress line reads; each thread owns one and is its only writer.
#[derive(Debug, Default)]
pub struct Progress {
    /// Completed requests (recorded, not warmup).
    pub ok: AtomicU64,
    /// Failed requests.
    pub errors: AtomicU64,
    /// Requests that ended in the warmup.
    pub warmup: AtomicU64,
}

/// Counters of the scenarios' client behaviours (part of [`Stats`], reported as they are).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ScenarioCounts {
    /// `ABORT_REQUEST` records sent.
    pub aborts_sent: u64,
    /// Aborted requests the server ended with `END_REQUEST`.
    pub aborts_ended: u64,
    /// Aborted requests whose connection the server closed instead.
    pub aborts_closed: u64,
    /// Connections closed mid-response by the disconnect scenario.
    pub disconnects: u64,
    /// Requests whose write side was shut down after sending (half-close scenario).
    pub half_closes: u64,
    /// Read pauses taken (slow-reader scenario).
    pub reader_pauses: u64,
    /// Requests dropped because another request on their connection failed.
    pub cancelled: u64,
}

impl ScenarioCounts {
    fn merge(&mut self, other: &Self) {
        self.aborts_sent += other.aborts_sent;
        self.aborts_ended += other.aborts_ended;
        self.aborts_closed += other.aborts_closed;
        self.disconnects += other.disconnects;
        self.half_closes += other.half_closes;
        self.reader_pauses += other.reader_pauses;
        self.cancelled += other.cancelled;
    }
}

/// Counters of one thread (or, after [`Stats::merge`], of the run).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latency of completed requests in nanoseconds.
    pub latency: Histogram<u64>,
    /// Complete responses.
    pub ok: u64,
    /// Failures, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Complete responses by HTTP status (index = status, 0..=999).
    pub statuses: Vec<u64>,
    /// What the scenarios' client behaviours did.
    pub scenario: ScenarioCounts,
    /// Requests that ended during the warmup (not in any other counter).
    pub warmup: u64,
    /// Bytes read from sockets after the warmup.
    pub bytes_in: u64,
    /// Bytes written to sockets after the warmup.
    pub bytes_out: u64,
    /// Response body bytes of completed requests.
    pub body_bytes: u64,
    /// STDERR bytes received (FastCGI).
    pub stderr_bytes: u64,
    /// Connections opened (warmup included).
    pub connections: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Self {
        let max = u64::try_from(MAX_RECORDED_LATENCY.as_nanos()).unwrap_or(u64::MAX);
        Self {
            // The bounds are valid constants (1 <= low, high >= 2 * low, sigfig <= 5).
            latency: Histogram::new_with_bounds(1, max, HISTOGRAM_SIGFIG)
                .expect("valid histogram bounds"),
            ok: 0,
            errors: [0; ErrorKind::ALL.len()],
            statuses: vec![0; 1000],
            scenario: ScenarioCounts::default(),
            warmup: 0,
            bytes_in: 0,
            bytes_out: 0,
            body_bytes: 0,
            stderr_bytes: 0,
            connections: 0,
        }
    }

    /// Counts the outcome of one request; `recorded` is false for warmup requests, which
    /// only count as warmup.
    pub fn finish(&mut self, recorded: bool, outcome: Outcome, progress: &Progress) {
        if !recorded {
            self.warmup += 1;
            progress.warmup.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match outcome {
            Outcome::Ok { status, latency } => {
                self.ok += 1;
                let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                self.latency.saturating_record(ns.max(1));
                if let Some(c) = self.statuses.get_mut(usize::from(status)) {
                    *c += 1;
                }
                progress.ok.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Error(kind) => {
                self.errors[kind.index()] += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::AbortEnded => self.scenario.aborts_ended += 1,
            Outcome::AbortClosed => self.scenario.aborts_closed += 1,
            Outcome::Disconnected => self.scenario.disconnects += 1,
            Outcome::Cancelled => self.scenario.cancelled += 1,
        }
    }

    /// Failures of `kind`.
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// All failures.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Requests that ended after the warmup, whatever their outcome.
    pub fn total_requests(&self) -> u64 {
        self.ok
            + self.total_errors()
            + self.scenario.aborts_ended
            + self.scenario.aborts_closed
            + self.scenario.disconnects
            + self.scenario.cancelled
    }

    /// Adds `other` into `self` (histograms included).
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail.
        self.latency.add(&other.latency).expect("same bounds");
        self.ok += other.ok;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.statuses.iter_mut().zip(&other.statuses) {
            *a += b;
        }
        self.scenario.merge(&other.scenario);
        self.warmup += other.warmup;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.body_bytes += other.body_bytes;
        self.stderr_bytes += other.stderr_bytes;
        self.connections += other.connections;
    }

    /// `(status, count)` for every status seen.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(s, &c)| (s as u16, c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let p = Progress::default();
        let mut a = Stats::new();
        let mut b = Stats::new();
        let ok = |ms| Outcome::Ok {
            status: 200,
            latency: Duration::from_millis(ms),
        };
        a.finish(true, ok(1), &p);
        b.finish(true, ok(100), &p);
        b.finish(true, Outcome::Error(ErrorKind::Timeout), &p);
        b.finish(false, ok(5), &p);
        a.merge(&b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.error_count(ErrorKind::Timeout), 1);
        assert_eq!(a.warmup, 1);
        assert_eq!(a.total_requests(), 3);
        assert_eq!(a.status_counts(), vec![(200, 2)]);
        assert!(a.latency.max() >= 99_000_000);
        assert_eq!(p.ok.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
