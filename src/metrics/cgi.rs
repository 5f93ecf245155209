//! [`CgiMetrics`]: the handles the CGI-script executor updates, one set per worker thread,
//! registered once against the current recorder (no-ops without one).

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::names::*;

/// How a script ended (the `outcome` label of [`CGI_SCRIPTS_ENDED_TOTAL`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CgiOutcome {
    /// Exit status 0.
    Ok,
    /// A non-zero exit status.
    ErrorExit,
    /// Ended by a signal the executor did not send.
    Signal,
    /// Ended by the executor after a timeout.
    KilledTimeout,
    /// Ended by the executor because its request went away (abort, lost connection, shutdown).
    KilledAbort,
    /// Could not be started.
    SpawnFailure,
}

impl CgiOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 6] = [
        Self::Ok,
        Self::ErrorExit,
        Self::Signal,
        Self::KilledTimeout,
        Self::KilledAbort,
        Self::SpawnFailure,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ErrorExit => "error_exit",
            Self::Signal => "signal",
            Self::KilledTimeout => "killed_timeout",
            Self::KilledAbort => "killed_abort",
            Self::SpawnFailure => "spawn_failure",
        }
    }
}

/// Why a request ran no script (the `reason` label of [`CGI_REFUSALS_TOTAL`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CgiRefusal {
    /// 404: no such script.
    NotFound,
    /// 403: outside the roots, a symbolic link out, not executable, writable by others.
    Forbidden,
    /// 503: the running limit and its queue were full, or the queue wait timed out.
    Overloaded,
    /// 503: the request needed request-body spool and its root's budget on the worker was
    /// spent (its script was ended before it answered).
    SpoolBudget,
}

impl CgiRefusal {
    /// Every reason, in label order.
    pub const ALL: [Self; 4] = [
        Self::NotFound,
        Self::Forbidden,
        Self::Overloaded,
        Self::SpoolBudget,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Overloaded => "overloaded",
            Self::SpoolBudget => "spool_budget",
        }
    }
}

/// The CGI executor's metric handles of one worker.
pub struct CgiMetrics {
    running: Gauge,
    spawned: Counter,
    ended: [Counter; CgiOutcome::ALL.len()],
    refusals: [Counter; CgiRefusal::ALL.len()],
    spawn_seconds: Histogram,
    queue_wait_seconds: Histogram,
    stderr_suppressed: Counter,
    env_dropped: Counter,
}

impl CgiMetrics {
    /// Registers the handles with the current recorder.
    pub fn new() -> Self {
        Self {
            running: gauge!(CGI_SCRIPTS_RUNNING),
            spawned: counter!(CGI_SCRIPTS_SPAWNED_TOTAL),
            ended: CgiOutcome::ALL
                .map(|o| counter!(CGI_SCRIPTS_ENDED_TOTAL, "outcome" => o.as_str())),
            refusals: CgiRefusal::ALL.map(|r| counter!(CGI_REFUSALS_TOTAL, "reason" => r.as_str())),
            spawn_seconds: histogram!(CGI_SPAWN_SECONDS),
            queue_wait_seconds: histogram!(CGI_QUEUE_WAIT_SECONDS),
            stderr_suppressed: counter!(CGI_STDERR_SUPPRESSED_TOTAL),
            env_dropped: counter!(CGI_ENV_DROPPED_TOTAL),
        }
    }

    /// A script was spawned after `seconds`; it is running.
    pub fn spawned(&self, seconds: f64) {
        self.spawned.increment(1);
        self.spawn_seconds.record(seconds);
    }

    /// A script's supervisor started.
    pub fn script_started(&self) {
        self.running.increment(1.0);
    }

    /// A script (and its group) ended.
    pub fn script_ended(&self, outcome: CgiOutcome) {
        self.running.decrement(1.0);
        self.ended[outcome as usize].increment(1);
    }

    /// A script could not be spawned.
    pub fn spawn_failed(&self) {
        self.ended[CgiOutcome::SpawnFailure as usize].increment(1);
    }

    /// A request ran nothing.
    pub fn refused(&self, reason: CgiRefusal) {
        self.refusals[reason as usize].increment(1);
    }

    /// A request waited `seconds` for a running slot.
    pub fn queue_wait(&self, seconds: f64) {
        self.queue_wait_seconds.record(seconds);
    }

    /// Request variables not passed to a script.
    pub fn env_dropped(&self, variables: u64) {
        self.env_dropped.increment(variables);
    }

    /// stderr lines not logged (rate limit).
    pub fn stderr_suppressed(&self, lines: u64) {
        self.stderr_suppressed.increment(lines);
    }
}

impl Default for CgiMetrics {
    fn default() -> Self {
        Self::new()
    }
}
