//! [`Peer`]: a request's line back to its front end, beside the response. A handler that asks
//! for it ([`super::Handler::uses_peer`]) finds one in each request's extensions, and can
//! - send error output (FastCGI `FCGI_STDERR` records; front ends log them), through a queue
//!   of at most [`STDERR_QUEUE_BYTES`] that the connection drains under its send-queue mark
//!   (backpressure: [`Peer::write_stderr`] waits while the queue is full);
//! - learn that the front end closed its sending side ([`Peer::read_closed`]). What that means
//!   is the handler's call: for FastCGI it is how a front end that does not multiplex aborts a
//!   request (nginx closes the connection when its client leaves), for SCGI front ends may
//!   half-close right after the request and still read the answer.
//!
//! The connection's driver owns the other end; the request's end (however it ends) closes the
//! queue, and later writes fail.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// Most error-output bytes queued for one request; [`Peer::write_stderr`] waits beyond it.
pub const STDERR_QUEUE_BYTES: usize = 64 * 1024;

/// Why error output cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StderrError {
    /// The protocol has no error stream (SCGI): log the output instead.
    #[error("the protocol has no error stream")]
    NoErrorStream,
    /// The request has ended (finished or aborted).
    #[error("the request has ended")]
    Ended,
}

/// A request's line back to its front end (a request extension; see the module docs).
#[derive(Clone, Debug)]
pub struct Peer(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    error_stream: bool,
    read_closed: bool,
    ended: bool,
    stderr: VecDeque<Bytes>,
    stderr_bytes: usize,
    /// The connection side, waiting for error output.
    drainer: Option<Waker>,
    /// Handler tasks waiting for room in the queue or for the read side to close.
    waiters: Vec<Waker>,
}

impl State {
    /// Registers the polling task as a waiter, once however often it polls.
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }
}

impl Peer {
    /// A peer for a request on a connection that has (FastCGI) or lacks an error stream.
    pub(crate) fn new(error_stream: bool) -> Self {
        Self(Arc::new(Mutex::new(State {
            error_stream,
            ..State::default()
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the state half-changed (every change
        // is a single field or a push), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether error output reaches the front end (FastCGI) rather than nowhere.
    pub fn has_error_stream(&self) -> bool {
        self.state().error_stream
    }

    /// Queues `data` as error output, waiting while [`STDERR_QUEUE_BYTES`] are already queued.
    pub async fn write_stderr(&self, data: Bytes) -> Result<(), StderrError> {
        let mut data = Some(data);
        poll_fn(|cx| {
            let mut st = self.state();
            if !st.error_stream {
                return Poll::Ready(Err(StderrError::NoErrorStream));
            }
            if st.ended {
                return Poll::Ready(Err(StderrError::Ended));
            }
            if st.stderr_bytes >= STDERR_QUEUE_BYTES {
                st.wait(cx);
                return Poll::Pending;
            }
            let data = data.take().unwrap_or_default();
            if !data.is_empty() {
                st.stderr_bytes += data.len();
                st.stderr.push_back(data);
                if let Some(w) = st.drainer.take() {
                    w.wake();
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Whether the front end has closed its sending side.
    pub fn is_read_closed(&self) -> bool {
        self.state().read_closed
    }

    /// Resolves once the front end has closed its sending side (never, if it does not).
    pub async fn read_closed(&self) {
        poll_fn(|cx| {
            let mut st = self.state();
            if st.read_closed {
                Poll::Ready(())
            } else {
                st.wait(cx);
                Poll::Pending
            }
        })
        .await
    }

    /// The connection read EOF.
    pub(crate) fn mark_read_closed(&self) {
        let waiters = {
            let mut st = self.state();
            st.read_closed = true;
            std::mem::take(&mut st.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    /// The next queued error output, or `Pending` (the waker is called when some comes).
    pub(crate) fn poll_stderr(&self, cx: &mut Context<'_>) -> Poll<Bytes> {
        let mut st = self.state();
        match st.stderr.pop_front() {
            Some(data) => {
                st.stderr_bytes -= data.len();
                let waiters = std::mem::take(&mut st.waiters);
                drop(st);
                waiters.into_iter().for_each(Waker::wake);
                Poll::Ready(data)
            }
            None => {
                st.drainer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The request ended: later writes fail, and writers waiting for room are woken.
    pub(crate) fn end(&self) {
        let waiters = {
            let mut st = self.state();
            st.ended = true;
            st.stderr.clear();
            st.stderr_bytes = 0;
            std::mem::take(&mut st.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn drain(peer: &Peer) -> Vec<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(d) = peer.poll_stderr(&mut cx) {
            out.push(d);
        }
        out
    }

    #[test]
    fn stderr_waits_at_the_queue_limit_and_resumes_when_drained() {
        let peer = Peer::new(true);
        let big = Bytes::from(vec![b'x'; STDERR_QUEUE_BYTES]);
        assert_eq!(peer.write_stderr(big).now_or_never(), Some(Ok(())));
        let mut next = Box::pin(peer.write_stderr(Bytes::from_static(b"more")));
        assert!((&mut next).now_or_never().is_none(), "full queue must wait");
        assert_eq!(drain(&peer).len(), 1);
        assert_eq!(next.now_or_never(), Some(Ok(())));
        assert_eq!(drain(&peer), vec![Bytes::from_static(b"more")]);
    }

    #[test]
    fn stderr_fails_without_an_error_stream_or_after_the_end() {
        let scgi = Peer::new(false);
        let write = scgi.write_stderr(Bytes::from_static(b"x")).now_or_never();
        assert_eq!(write, Some(Err(StderrError::NoErrorStream)));
        let peer = Peer::new(true);
        let big = Bytes::from(vec![b'x'; STDERR_QUEUE_BYTES]);
        assert_eq!(peer.write_stderr(big).now_or_never(), Some(Ok(())));
        let mut waiting = Box::pin(peer.write_stderr(Bytes::from_static(b"y")));
        assert!((&mut waiting).now_or_never().is_none());
        peer.end();
        assert_eq!(waiting.now_or_never(), Some(Err(StderrError::Ended)));
        assert!(drain(&peer).is_empty(), "the end drops what was queued");
    }

    #[test]
    fn a_task_polling_again_waits_once() {
        let peer = Peer::new(true);
        let mut closed = Box::pin(peer.read_closed());
        for _ in 0..100 {
            assert!((&mut closed).now_or_never().is_none());
        }
        assert_eq!(peer.state().waiters.len(), 1);
    }

    #[test]
    fn read_closed_resolves_once_marked() {
        let peer = Peer::new(true);
        let mut closed = Box::pin(peer.read_closed());
        assert!((&mut closed).now_or_never().is_none());
        assert!(!peer.is_read_closed());
        peer.mark_read_closed();
        assert!(closed.now_or_never().is_some());
        assert!(peer.is_read_closed());
    }
}
