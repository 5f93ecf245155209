//! [`Signal`]: a wake-up for the one task that waits on it, as a connection's loops wait for
//! work from one another. It is what `tokio::sync::Notify::notify_one` does for a single
//! waiter, in 24 bytes of state instead of a 32-byte `Notify` plus a 64-byte `Notified` in
//! every waiting connection's task.

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// A single-waiter wake-up: [`Signal::notify`] before the wait is not lost (the next wait
/// returns at once), and several before it count as one.
#[derive(Default)]
pub struct Signal {
    notified: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    /// Wakes the waiter, or lets its next wait return at once.
    pub fn notify(&self) {
        self.notified.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// `Ready` once notified (consuming the notification); otherwise `cx` is woken by the
    /// next [`Signal::notify`].
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.notified.replace(false) {
            return Poll::Ready(());
        }
        let waker = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }

    /// Waits for a notification.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_wait(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_notification_before_the_wait_is_kept_and_several_count_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let signal = Signal::default();
        signal.notify();
        signal.notify();
        assert!(signal.poll_wait(&mut cx).is_ready());
        assert!(signal.poll_wait(&mut cx).is_pending());
        signal.notify();
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "the waiter was woken");
        assert!(signal.poll_wait(&mut cx).is_ready());
        // Woken once, not again by a later notification without a wait.
        signal.notify();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }
}
