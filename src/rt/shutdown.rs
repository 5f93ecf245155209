//! Graceful shutdown: SIGTERM/SIGINT handling on the main thread and a broadcast every
//! worker (and every connection) can await.
//!
//! Phases only move forward: `Running` -> `Draining` (stop accepting, let in-flight work
//! finish until the drain deadline) -> `Abort` (a second signal: stop now). Workers read
//! the phase from a `tokio::sync::watch` channel, which works across runtimes.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

/// Where the process is in its life.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Phase {
    /// Serving.
    Running,
    /// Not accepting; finishing in-flight work until the drain deadline.
    Draining,
    /// Stop now, dropping whatever is in flight.
    Abort,
}

/// The sending side, kept by `main`.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<Phase>,
}

/// The receiving side, cloned into every worker and connection.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    rx: watch::Receiver<Phase>,
}

impl ShutdownTrigger {
    /// A trigger and its first signal.
    pub fn new() -> (Self, ShutdownSignal) {
        let (tx, rx) = watch::channel(Phase::Running);
        (Self { tx }, ShutdownSignal { rx })
    }

    /// Another receiver.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }

    /// Move to `phase` if it is later than the current one.
    pub fn advance(&self, phase: Phase) {
        self.tx.send_if_modified(|p| {
            if phase > *p {
                *p = phase;
                true
            } else {
                false
            }
        });
    }
}

impl ShutdownSignal {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.rx.borrow()
    }

    /// Whether draining (or aborting) has begun.
    pub fn is_draining(&self) -> bool {
        self.phase() >= Phase::Draining
    }

    /// Resolves once the phase is at least `phase` (immediately if the trigger is gone, since
    /// then nobody can tell the worker to keep going).
    pub async fn reached(&mut self, phase: Phase) {
        let _ = self.rx.wait_for(|p| *p >= phase).await;
    }

    /// Resolves when draining begins.
    pub async fn draining(&mut self) {
        self.reached(Phase::Draining).await;
    }

    /// Resolves when the drain is cut short.
    pub async fn aborted(&mut self) {
        self.reached(Phase::Abort).await;
    }
}

/// SIGTERM and SIGINT, caught from the moment this is created (so a signal during startup
/// is not lost), on a small current-thread runtime that belongs to the main thread.
#[derive(Debug)]
pub struct Signals {
    rt: tokio::runtime::Runtime,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Install the handlers.
    pub fn install() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (term, int) = {
            let _guard = rt.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            )
        };
        Ok(Self { rt, term, int })
    }

    /// Block until a signal arrives or `other` completes; `Ok(name)` for a signal,
    /// `Err(output)` for `other`.
    pub fn wait_or<F: std::future::Future>(&mut self, other: F) -> Result<&'static str, F::Output> {
        let Self { rt, term, int } = self;
        rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Ok("SIGTERM"),
                _ = int.recv() => Ok("SIGINT"),
                out = other => Err(out),
            }
        })
    }

    /// Run `fut` on the signal runtime (for awaiting cross-thread channels from `main`).
    pub fn block_on<F: std::future::Future>(&mut self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        let (t, s) = ShutdownTrigger::new();
        assert_eq!(s.phase(), Phase::Running);
        t.advance(Phase::Abort);
        t.advance(Phase::Draining);
        assert_eq!(s.phase(), Phase::Abort);
        assert!(s.is_draining());
    }

    #[test]
    fn waiters_wake_across_threads() {
        let (t, s) = ShutdownTrigger::new();
        let h = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut s = s;
            rt.block_on(async {
                s.draining().await;
                s.phase()
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.advance(Phase::Draining);
        assert_eq!(h.join().unwrap(), Phase::Draining);
    }

    #[test]
    fn dropped_trigger_releases_waiters() {
        let (t, mut s) = ShutdownTrigger::new();
        drop(t);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(s.aborted());
    }
}
