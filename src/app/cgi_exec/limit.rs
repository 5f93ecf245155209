//! The running-scripts cap of one root on one worker, and its queue: at most `max_running`
//! scripts at once; up to `max_queued` more requests wait (first come, first served) at most
//! `queue_timeout` for a slot; the rest are answered 503 at once.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Why a request got no running slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum GateError {
    /// Every slot is taken and the queue is full.
    #[error("every running slot is taken and the queue is full")]
    Full,
    /// The queue wait passed its deadline.
    #[error("no running slot came free in time")]
    Timeout,
}

/// One root's cap on one worker.
#[derive(Debug)]
pub(super) struct Gate {
    slots: Arc<Semaphore>,
    waiting: Cell<usize>,
    max_queued: usize,
    queue_timeout: Duration,
}

/// Takes a place in the queue for as long as it lives.
struct Waiting<'a>(&'a Cell<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Gate {
    /// A gate of `max_running` slots and a queue of `max_queued`.
    pub(super) fn new(max_running: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_running.min(Semaphore::MAX_PERMITS))),
            waiting: Cell::new(0),
            max_queued,
            queue_timeout,
        }
    }

    /// A running slot (held until the script's group has ended) and how long it took.
    pub(super) async fn enter(&self) -> Result<(OwnedSemaphorePermit, Duration), GateError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok((p, Duration::ZERO));
        }
        if self.waiting.get() >= self.max_queued {
            return Err(GateError::Full);
        }
        self.waiting.set(self.waiting.get() + 1);
        let _waiting = Waiting(&self.waiting);
        let start = Instant::now();
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok((p, start.elapsed())),
            // The semaphore is never closed; treat it as full if it were.
            Ok(Err(_)) => Err(GateError::Full),
            Err(_) => Err(GateError::Timeout),
        }
    }

    /// Requests waiting now.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiting.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cap_queue_and_deadline() {
        let gate = Gate::new(1, 1, Duration::from_secs(2));
        let (first, waited) = gate.enter().await.unwrap();
        assert_eq!(waited, Duration::ZERO);
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let gate = std::rc::Rc::new(gate);
                let g = gate.clone();
                let queued = tokio::task::spawn_local(async move { g.enter().await.map(|_| ()) });
                tokio::task::yield_now().await;
                assert_eq!(gate.waiting(), 1);
                // The queue (1) is full: refused at once.
                assert_eq!(gate.enter().await.unwrap_err(), GateError::Full);
                // The queued one times out after the deadline.
                assert_eq!(queued.await.unwrap(), Err(GateError::Timeout));
                assert_eq!(gate.waiting(), 0);
                drop(first);
                assert!(gate.enter().await.is_ok());
            })
            .await;
    }
}
