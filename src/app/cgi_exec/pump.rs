//! The three pipes of a running script, each through a bounded buffer:
//! - [`feed`]: the request body into stdin, as the connection delivers it (the connection
//!   stops reading while the script does not take it), closing stdin exactly at the end of
//!   the body. It runs as its own task so that output is read while input is written: a
//!   script that answers before reading its body, or writes while it reads, never deadlocks.
//! - [`Output`]: stdout, read in chunks of at most [`READ_CHUNK`] bytes only when the
//!   response wants more (the driver pulls under the send-queue mark: backpressure up to the
//!   script).
//! - [`log_stderr`]: stderr lines to the log with the request's identity, rate-limited.

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
use crate::app::Body;
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

/// Copies `first`, then the rest of `body`, into the script's stdin, then closes it. A
/// script that stops taking input for `idle` while bytes wait is ended
/// ([`KillCause::Timeout`]); one that closes its stdin (or exits) early has the rest of the
/// body read and dropped.
pub(super) async fn feed(
    first: Bytes,
    mut body: Body,
    mut stdin: ChildStdin,
    idle: Duration,
    script: Killer,
    done: Rc<BodyDone>,
) {
    let _done = BodyDoneNow(done);
    let mut open = true;
    if !first.is_empty() {
        match tokio::time::timeout(idle, stdin.write_all(&first)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => open = false,
            Err(_) => {
                script.kill(KillCause::Timeout);
                return;
            }
        }
    }
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return; // The request is gone; its task ends the script.
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !open || data.is_empty() {
            continue;
        }
        match tokio::time::timeout(idle, stdin.write_all(&data)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => open = false, // EPIPE: the script no longer reads.
            Err(_) => {
                script.kill(KillCause::Timeout);
                return;
            }
        }
    }
    let _ = stdin.shutdown().await;
}

/// Set once the request body has been read to its end (or will never be), so the response
/// head may go to the front end (see `mod.rs`, "holding the head").
#[derive(Debug, Default)]
pub(super) struct BodyDone {
    done: std::cell::Cell<bool>,
    wake: tokio::sync::Notify,
}

impl BodyDone {
    /// Waits until the body is done.
    pub(super) async fn wait(&self) {
        loop {
            let notified = self.wake.notified();
            if self.done.get() {
                return;
            }
            notified.await;
        }
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
        self.0.done.set(true);
        self.0.wake.notify_waiters();
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
    pub(super) async fn read_unhurried(&mut self) -> Result<Option<Bytes>, OutputError> {
        self.buf.clear();
        self.buf.resize(READ_CHUNK, 0);
        let n = self.stdout.read(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(n).freeze()))
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

/// Logs each stderr line of a script (at most [`MAX_STDERR_LINE`] bytes of it) as a warning
/// with `who` (the request's identity), within `budget`.
pub(super) async fn log_stderr(
    mut stderr: ChildStderr,
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
