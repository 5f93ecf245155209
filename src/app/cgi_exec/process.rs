//! A running script's life: a supervisor task per script owns the child, reaps it, and ends
//! its whole process group when asked (a timeout), when the request lets go of it (an
//! abort, a lost connection, a shutdown: the [`ScriptHandle`] is dropped) or when the total
//! timeout passes: SIGTERM to the group, [`CgiRoot::kill_grace`], then SIGKILL. After the
//! script's own process has ended, anything left in its group (grandchildren) is ended the
//! same way. What left the group (`setsid`, `setpgid`) is ended by `orphans` once its parent
//! has ended. The supervisor holds the script's running slot and its registration (which
//! tells `orphans` that the group is a running script's) until then.
//!
//! The leader is reaped by tokio (a pidfd on Linux), so the group id cannot be reused while
//! the leader is unreaped; after that the group id stays reserved by the kernel as long as
//! any member lives, which is exactly when the sweep signals it.
//!
//! [`CgiRoot::kill_grace`]: super::config::CgiRoot::kill_grace

use std::cell::Cell;
use std::process::ExitStatus;
use std::rc::Rc;
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::orphans::Registration;
use super::pump::AbortOnDrop;
use crate::app::Peer;
use crate::metrics::{CgiMetrics, CgiOutcome};
use crate::sys::process as sys;

/// How long the stderr task may still run once the script's group has ended.
pub(super) const STDERR_DRAIN: Duration = Duration::from_millis(200);

/// How often the sweep looks whether a process group is empty yet.
pub(super) const SWEEP_POLL: Duration = Duration::from_millis(20);

/// Why the executor ends a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillCause {
    /// A timeout passed.
    Timeout,
    /// The request was aborted, its connection lost, or the server is shutting down.
    Abort,
}

/// How a script ended.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ending {
    /// The wait status (`None` when waiting failed).
    pub(super) status: Option<ExitStatus>,
    /// Set when the executor ended it.
    pub(super) killed: Option<KillCause>,
}

impl Ending {
    /// The outcome label.
    pub(super) fn outcome(&self) -> CgiOutcome {
        use std::os::unix::process::ExitStatusExt;
        match (self.killed, self.status) {
            (Some(KillCause::Timeout), _) => CgiOutcome::KilledTimeout,
            (Some(KillCause::Abort), _) => CgiOutcome::KilledAbort,
            (None, Some(s)) if s.success() => CgiOutcome::Ok,
            (None, Some(s)) if s.signal().is_some() => CgiOutcome::Signal,
            _ => CgiOutcome::ErrorExit,
        }
    }

    /// The FastCGI END_REQUEST appStatus: the exit code, or 128 + the signal.
    pub(super) fn app_status(&self) -> u32 {
        use std::os::unix::process::ExitStatusExt;
        match self.status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => c as u32,
                (None, Some(sig)) => 128 + sig as u32,
                _ => 255,
            },
            None => 255,
        }
    }
}

/// State the supervisor and the request share (one thread: `Rc` and `Cell`).
#[derive(Debug)]
struct Shared {
    pgid: i32,
    kill: Cell<Option<KillCause>>,
    kill_wake: Notify,
    ending: Cell<Option<Ending>>,
    ended: Notify,
}

/// The request's hold on a running script. Dropping it before the script ended ends the
/// script (and its group) as [`KillCause::Abort`].
#[derive(Debug)]
pub(super) struct ScriptHandle {
    shared: Rc<Shared>,
}

/// A way to end a script that does not keep the request's hold on it (for the stdin task).
#[derive(Clone, Debug)]
pub(super) struct Killer(Rc<Shared>);

impl Killer {
    /// Asks the supervisor to end the script's group (the first cause counts).
    pub(super) fn kill(&self, cause: KillCause) {
        let shared = &self.0;
        if shared.kill.get().is_none() && shared.ending.get().is_none() {
            shared.kill.set(Some(cause));
            shared.kill_wake.notify_one();
        }
    }
}

impl ScriptHandle {
    /// Asks the supervisor to end the script's group (the first cause counts).
    pub(super) fn kill(&self, cause: KillCause) {
        self.killer().kill(cause);
    }

    /// A [`Killer`] for this script.
    pub(super) fn killer(&self) -> Killer {
        Killer(self.shared.clone())
    }

    /// Waits until the script's own process has ended and been reaped.
    pub(super) async fn wait(&self) -> Ending {
        loop {
            let notified = self.shared.ended.notified();
            if let Some(e) = self.shared.ending.get() {
                return e;
            }
            notified.await;
        }
    }
}

impl Drop for ScriptHandle {
    fn drop(&mut self) {
        self.kill(KillCause::Abort);
    }
}

/// What the supervisor needs besides the child.
pub(super) struct Supervision {
    /// The root's kill grace.
    pub(super) grace: Duration,
    /// When the script must have ended (the total timeout).
    pub(super) deadline: Instant,
    /// The running slot, released once the group is gone.
    pub(super) permit: OwnedSemaphorePermit,
    /// The worker's CGI metrics.
    pub(super) metrics: Rc<CgiMetrics>,
    /// For the log line at the end.
    pub(super) label: Rc<str>,
    /// The task relaying stderr: given [`STDERR_DRAIN`] after the group has ended, then
    /// stopped (a process that left the group may hold the pipe open forever).
    pub(super) stderr: Option<AbortOnDrop>,
    /// When the front end closes this request's connection, the script is ended as
    /// [`KillCause::Abort`] (see `CgiRoot::stop_on_close`).
    pub(super) stop_on_close: Option<Peer>,
    /// The script's place among the running ones (see `orphans`), given up once its group
    /// has ended.
    pub(super) registration: Registration,
}

/// Starts the supervisor of `child` (which must have been spawned in its own process group)
/// on the current worker, and returns the request's handle.
pub(super) fn supervise(child: Child, sup: Supervision) -> ScriptHandle {
    let pgid = child.id().map_or(0, |p| p as i32);
    let shared = Rc::new(Shared {
        pgid,
        kill: Cell::new(None),
        kill_wake: Notify::new(),
        ending: Cell::new(None),
        ended: Notify::new(),
    });
    sup.metrics.script_started();
    tokio::task::spawn_local(run(child, shared.clone(), sup));
    ScriptHandle { shared }
}

/// Ends the group with SIGKILL if the supervisor is dropped before it finished (the worker's
/// runtime going away).
struct LastResort {
    pgid: i32,
    armed: bool,
}

impl Drop for LastResort {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

async fn run(mut child: Child, shared: Rc<Shared>, sup: Supervision) {
    let pgid = shared.pgid;
    let mut last_resort = LastResort {
        pgid,
        armed: pgid > 0,
    };
    let wanted = async {
        loop {
            let notified = shared.kill_wake.notified();
            if let Some(c) = shared.kill.get() {
                return c;
            }
            notified.await;
        }
    };
    let closed = async {
        match &sup.stop_on_close {
            Some(peer) => peer.read_closed().await,
            None => std::future::pending().await,
        }
    };
    let (status, killed) = tokio::select! {
        biased;
        s = child.wait() => (s.ok(), None),
        cause = wanted => (terminate(&mut child, pgid, sup.grace).await, Some(cause)),
        () = closed => {
            shared.kill.set(Some(KillCause::Abort));
            tracing::info!(script = %sup.label, "CGI: the front end closed the connection: ending the script");
            (terminate(&mut child, pgid, sup.grace).await, Some(KillCause::Abort))
        }
        () = tokio::time::sleep_until(sup.deadline) => {
            shared.kill.set(Some(KillCause::Timeout));
            (terminate(&mut child, pgid, sup.grace).await, Some(KillCause::Timeout))
        }
    };
    let ending = Ending { status, killed };
    shared.ending.set(Some(ending));
    shared.ended.notify_waiters();
    sweep(pgid, sup.grace).await;
    last_resort.armed = false;
    drop(sup.registration);
    if let Some(mut task) = sup.stderr {
        let _ = tokio::time::timeout(STDERR_DRAIN, &mut task.0).await;
    }
    tracing::debug!(script = %sup.label, pid = pgid, ?status, ?killed, "script ended");
    sup.metrics.script_ended(ending.outcome());
    drop(sup.permit);
}

/// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL; reaps it.
async fn terminate(child: &mut Child, pgid: i32, grace: Duration) -> Option<ExitStatus> {
    signal_group(pgid, libc::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            signal_group(pgid, libc::SIGKILL);
            child.wait().await.ok()
        }
    }
}

/// Ends whatever is left in the group once its leader is gone: SIGTERM, up to `grace` for
/// the group to empty, then SIGKILL.
async fn sweep(pgid: i32, grace: Duration) {
    if !group_alive(pgid) {
        return;
    }
    signal_group(pgid, libc::SIGTERM);
    let until = Instant::now() + grace;
    while group_alive(pgid) {
        if Instant::now() >= until {
            signal_group(pgid, libc::SIGKILL);
            return;
        }
        tokio::time::sleep(SWEEP_POLL).await;
    }
}

fn group_alive(pgid: i32) -> bool {
    sys::group_exists(pgid)
}

/// Signals the script's own group (made with `process_group(0)`, so never ringgate's).
fn signal_group(pgid: i32, signal: i32) {
    let _ = sys::signal_group(pgid, signal);
}
