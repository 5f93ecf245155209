//! The three pipes of a running script, each through a bounded buffer:
//! - [`feed`]: the request body into stdin, as the connection delivers it, through the
//!   script's spool (`spool`; the connection stops reading while the script does not take
//!   it), closing stdin exactly at the end of the body. It runs as its own task so that output is read while input is written: a
//!   script that answers before reading its body, or writes while it reads, never deadlocks.
//! - [`Output`]: stdout, read in chunks of at most [`READ_CHUNK`] bytes only when the
//!   response wants more (the driver pulls under the send-queue mark: backpressure up to the
//!   script).
//! - [`relay_stderr`]: stderr to the front end (FCGI_STDERR), or its lines to the log with the
//!   request's identity, rate-limited.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::{KillCause, Killer};
use super::spool::{Short, Spool, SpoolBudget};
use crate::app::{Body, Peer};
use crate::metrics::CgiMetrics;

/// Most bytes read from a script's stdout at once (one response frame at most).
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// Longest stderr line logged; the rest of a longer line is dropped.
pub(super) const MAX_STDERR_LINE: usize = 4096;

/// A task aborted when this is dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies `first`, then the rest of `body`, into the script's stdin, then closes it.
///
/// A frame is written straight to the pipe when nothing waits before it; what the pipe does
/// not take is copied into the script's [`Spool`] (see `spool`), so a front end (or a client)
/// that sends the whole body before reading the response is not blocked by a script that
/// answers while it reads (a `cat` echo), and the body is complete early (see [`BodyDone`]).
/// Past the request's own spool limit the rest of the frame is kept (one frame, copied to its
/// size) and the connection stops being read (backpressure). When the root's spool budget on
/// this worker is spent and the response head has not gone out, the request is refused
/// ([`BodyDone::is_refused`]: the caller answers 503 and ends the script); after the head,
/// the budget is backpressure too. A script that takes nothing for `idle` while bytes wait is
/// ended ([`KillCause::Timeout`]); one that closes its stdin (or exits) early has the rest of
/// the body read and dropped.
pub(super) async fn feed(
    first: Bytes,
    mut body: Body,
    mut stdin: ChildStdin,
    limits: FeedLimits,
    script: Killer,
    state: Rc<BodyDone>,
) {
    use bytes::Buf;
    use std::os::fd::AsFd;
    let _done = BodyDoneNow(state.clone());
    let mut spool = Spool::new(limits.max_spool, limits.budget);
    // The rest of a frame the spool had no room for (copied: it must not keep the
    // connection's read buffer alive).
    let mut pending = Bytes::new();
    let (mut receiving, mut open) = (true, true);
    let mut arrived = Some(first).filter(|f| !f.is_empty());
    loop {
        if let Some(data) = arrived.take() {
            let mut at = 0;
            if spool.is_empty() && pending.is_empty() {
                // Straight into the pipe when it has room (tokio's own write would wait for
                // the reactor to report a fresh pipe writable first).
                match crate::sys::io::write_now(stdin.as_fd(), &data) {
                    Ok(n) if n > 0 => at = n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => open = false, // EPIPE (or nothing taken): no longer reads.
                }
            }
            if open && at < data.len() {
                let (n, short) = spool.push(&data[at..]);
                at += n;
                if short == Some(Short::Budget) && !state.head_sent() {
                    state.refuse();
                    return;
                }
                if at < data.len() {
                    pending = Bytes::copy_from_slice(&data[at..]);
                }
            }
            if !open {
                spool.clear();
                pending = Bytes::new();
            }
        }
        if !(receiving || (open && !(spool.is_empty() && pending.is_empty()))) {
            break;
        }
        let can_receive = receiving && pending.is_empty();
        state.set_full(receiving && !can_receive);
        let from_spool = !spool.is_empty();
        let front = match (open, from_spool) {
            (false, _) => Bytes::new(),
            (true, true) => spool.front(),
            (true, false) => pending.clone(),
        };
        let writing = !front.is_empty();
        tokio::select! {
            frame = body.frame(), if can_receive => match frame {
                None => {
                    receiving = false;
                    state.mark_done();
                }
                Some(Err(_)) => return, // The request is gone; its task ends the script.
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if open && !data.is_empty() {
                            arrived = Some(data);
                        }
                    }
                }
            },
            written = tokio::time::timeout(limits.idle, stdin.write(&front)), if writing => {
                match written {
                    Ok(Ok(n)) if n > 0 => {
                        if from_spool {
                            spool.consumed(n);
                            if !pending.is_empty() {
                                let (taken, _) = spool.push(&pending);
                                pending.advance(taken);
                            }
                        } else {
                            pending.advance(n);
                        }
                    }
                    // EPIPE (or nothing taken): the script no longer reads.
                    Ok(_) => {
                        open = false;
                        spool.clear();
                        pending = Bytes::new();
                    }
                    Err(_) => {
                        script.kill(KillCause::Timeout);
                        return;
                    }
                }
            }
        }
    }
    drop(stdin);
}

/// The limits of [`feed`].
#[derive(Clone, Debug)]
pub(super) struct FeedLimits {
    /// Longest a script may take no input while some waits.
    pub(super) idle: Duration,
    /// Most body bytes held for the script (rounded up to spool blocks).
    pub(super) max_spool: usize,
    /// The root's spool budget on this worker.
    pub(super) budget: Rc<SpoolBudget>,
}

/// Set once the request body has been read to its end (or will never be), so the response
/// head may go to the front end (see `mod.rs`, "holding the head").
#[derive(Debug, Default)]
pub(super) struct BodyDone {
    done: std::cell::Cell<bool>,
    full: std::cell::Cell<bool>,
    refused: std::cell::Cell<bool>,
    head_sent: std::cell::Cell<bool>,
    wake: tokio::sync::Notify,
}

impl BodyDone {
    /// The spool budget was spent before the response head went out: the request is to be
    /// answered 503 (the body is not read further).
    pub(super) fn refuse(&self) {
        self.refused.set(true);
        self.wake.notify_waiters();
    }

    /// See [`BodyDone::refuse`].
    pub(super) fn is_refused(&self) -> bool {
        self.refused.get()
    }

    /// Waits until [`BodyDone::refuse`] (forever if it never comes).
    pub(super) async fn refused(&self) {
        loop {
            let notified = self.wake.notified();
            if self.refused.get() {
                return;
            }
            notified.await;
        }
    }

    /// The response head is going out: the request can no longer be refused.
    pub(super) fn set_head_sent(&self) {
        self.head_sent.set(true);
    }

    /// See [`BodyDone::set_head_sent`].
    pub(super) fn head_sent(&self) -> bool {
        self.head_sent.get()
    }

    /// The whole body has been received.
    pub(super) fn mark_done(&self) {
        self.done.set(true);
        self.wake.notify_waiters();
    }

    /// Whether the spool is full while more body is to come (the body cannot complete
    /// before the script reads).
    pub(super) fn set_full(&self, full: bool) {
        if self.full.replace(full) != full {
            self.wake.notify_waiters();
        }
    }

    /// See [`BodyDone::set_full`].
    pub(super) fn is_full(&self) -> bool {
        self.full.get()
    }

    /// Waits until the body is done or the spool's state changes.
    pub(super) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Whether it is.
    pub(super) fn is_done(&self) -> bool {
        self.done.get()
    }
}

/// Marks the body done when dropped (the feeding ended, however it ended; or there is no
/// body to feed).
pub(super) struct BodyDoneNow(pub(super) Rc<BodyDone>);

impl Drop for BodyDoneNow {
    fn drop(&mut self) {
        self.0.full.set(false);
        self.0.mark_done();
    }
}

/// Why reading stdout stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum OutputError {
    /// The script wrote nothing for the idle timeout.
    #[error("the script wrote nothing for {0:?}")]
    Idle(Duration),
    /// Reading the pipe failed.
    #[error("reading the script's output: {0}")]
    Io(#[from] io::Error),
}

/// A script's stdout.
#[derive(Debug)]
pub(super) struct Output {
    stdout: ChildStdout,
    idle: Duration,
    buf: BytesMut,
}

impl Output {
    /// Reads `stdout`, allowing `idle` between chunks.
    pub(super) fn new(stdout: ChildStdout, idle: Duration) -> Self {
        Self {
            stdout,
            idle,
            buf: BytesMut::new(),
        }
    }

    /// The next chunk, `None` at EOF.
    pub(super) async fn read(&mut self) -> Result<Option<Bytes>, OutputError> {
        match tokio::time::timeout(self.idle, self.read_unhurried()).await {
            Ok(r) => r,
            Err(_) => Err(OutputError::Idle(self.idle)),
        }
    }

    /// The next chunk, `None` at EOF, without the idle timeout (the caller bounds the wait).
    ///
    /// Read into one buffer kept for the script's life and copied out to the chunk's size: a
    /// chunk split off the buffer would keep a whole [`READ_CHUNK`] allocation alive, so a
    /// script writing a byte at a time would make held output (up to `head_hold_bytes`)
    /// cost 64 KiB per byte.
    pub(super) async fn read_unhurried(&mut self) -> Result<Option<Bytes>, OutputError> {
        if self.buf.len() != READ_CHUNK {
            self.buf.resize(READ_CHUNK, 0);
        }
        let n = self.stdout.read(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(Bytes::copy_from_slice(&self.buf[..n])))
    }
}

/// The stderr log budget of one root on one worker: at most `per_second` lines a second.
#[derive(Debug)]
pub(super) struct StderrBudget {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl StderrBudget {
    /// A budget of `per_second` lines a second.
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the lines suppressed before it.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= self.per_second {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Sends a script's stderr to `peer` (FCGI_STDERR) as it comes when one is given, and
/// otherwise (or once the peer refuses it) logs each line (at most [`MAX_STDERR_LINE`] bytes
/// of it) as a warning with `who` (the request's identity), within `budget`.
pub(super) async fn relay_stderr(
    mut stderr: ChildStderr,
    mut peer: Option<Peer>,
    who: Rc<str>,
    budget: Rc<RefCell<StderrBudget>>,
    metrics: Rc<CgiMetrics>,
) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 4096];
    let mut skipping = false;
    let emit = |line: &[u8]| {
        let allowed = budget.borrow_mut().allow(Instant::now());
        match allowed {
            Some(held) => {
                let line = String::from_utf8_lossy(line);
                let line = line.trim_end_matches('\r');
                if held > 0 {
                    tracing::warn!(script = %who, suppressed = held, "stderr: {line}");
                } else {
                    tracing::warn!(script = %who, "stderr: {line}");
                }
            }
            None => metrics.stderr_suppressed(1),
        }
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(to) = &peer {
            let data = Bytes::copy_from_slice(&chunk[..n]);
            if to.write_stderr(data).await.is_ok() {
                continue;
            }
            peer = None; // The request has ended: log the rest.
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                if !skipping {
                    emit(&buf);
                }
                buf.clear();
                skipping = false;
            } else if !skipping {
                buf.push(b);
                if buf.len() >= MAX_STDERR_LINE {
                    emit(&buf);
                    buf.clear();
                    skipping = true;
                }
            }
        }
    }
    if !buf.is_empty() && !skipping {
        emit(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_budget_counts_what_it_holds_back() {
        let mut b = StderrBudget::new(2);
        let t0 = Instant::now();
        assert_eq!(b.allow(t0), Some(0));
        assert_eq!(b.allow(t0), Some(0));
        assert_eq!(b.allow(t0), None);
        assert_eq!(b.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(b.allow(t0 + Duration::from_secs(1)), Some(2));
    }
}
