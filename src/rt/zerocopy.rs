//! Zero-copy sends (`IORING_OP_SEND_ZC`) on a small io_uring of the worker's own, and the
//! per-connection policy that falls back to plain sends when the kernel copies anyway.
//!
//! This module owns: the worker's zero-copy ring ([`ZcRing`]) and the task that reaps it, the
//! table of sends in flight on it together with the memory each one reads (kept until the
//! kernel's *notification*, not just until the send's result), and the per-connection state
//! ([`ZcConn`]) that reads the kernel's copy report on every notification.
//!
//! Why a ring of its own: tokio-uring 0.5's `send_zc` (on `UdpSocket` only) never asks for
//! the copy report (`IORING_SEND_ZC_REPORT_USAGE`), discards the notification's result,
//! resolves only on the notification (so a connection's sends queue behind it) and unwraps
//! the result of every completion flagged `IORING_CQE_F_MORE`, which the kernel also sets on
//! failed sends (a panic on a reset peer). Its custom-operation API takes single-completion
//! operations only. So SEND_ZC goes through the `io-uring` crate on a second ring per worker,
//! whose descriptor sits in the same tokio reactor (an [`AsyncFd`]) as tokio-uring's ring:
//! one reaper task per worker drains its completions.
//!
//! Lifecycle of one send: the SQE is pushed and submitted at once (the file is resolved by
//! the kernel during that call, while the caller still holds the socket); the first
//! completion gives the bytes sent (or the error) and says with `IORING_CQE_F_MORE` whether a
//! notification will follow; the notification (`IORING_CQE_F_NOTIF`) says the kernel no
//! longer reads the memory, and, with `REPORT_USAGE`, whether it copied it after all
//! (`IORING_NOTIF_USAGE_ZC_COPIED`: loopback and veth always do). The send future resolves on
//! the first completion; the table entry (and the `Bytes` it holds) goes at the notification.
//! A send future dropped early (a write timeout) cancels its send (`ASYNC_CANCEL`), and its
//! entry still waits for the kernel's completions before freeing the memory.
//!
//! The policy ([`ZcConn`]): a send of at least `threshold` bytes goes zero-copy; every
//! notification reports "copied" or not; after `fallback_after` copied notifications in a row
//! the connection sends plainly from then on.
//!
//! What a connection pins is bounded (`max_pinned`): a send's first completion comes as soon
//! as the kernel has queued it, so the driver counts it sent and queues more, while the memory
//! stays the kernel's until the notification, which comes only once the peer has acknowledged
//! the bytes. A peer that stops reading would so pin up to its socket's whole send buffer (4
//! MiB by default) in our memory, on top of the send queue (a plain send copies into the
//! kernel's instead). So a send goes zero-copy only while what the connection has pinned and
//! the send itself fit under `max_pinned`, or nothing is pinned; otherwise it is sent plainly.
//! A connection pins at most `max(max_pinned, its largest send)`. `fallback_after = 0` never falls back (it forces
//! the zero-copy path, for tests and measurement). A socket that refuses SEND_ZC
//! (`EOPNOTSUPP`: AF_UNIX) falls back at once; a kernel without the copy report (`EINVAL`,
//! before 6.2) turns zero-copy off for the whole worker.
//!
//! This file uses no other module of the crate: `examples/send_modes.rs` compiles it into
//! itself to measure the same code.

// The registered-buffer sends and the counters serve the measurement program
// (`examples/send_modes.rs`, which compiles this file as its own module) and the tests.
#![cfg_attr(not(test), allow(dead_code))]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;
use tokio::io::unix::AsyncFd;

/// `IORING_SEND_ZC_REPORT_USAGE` (kernel 6.2): the notification reports whether the kernel
/// copied. Not exported by `io-uring` 0.6.
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: set in a notification's result when the kernel copied.
const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
/// `IORING_CQE_F_NOTIF`: this completion is a notification.
const CQE_F_NOTIF: u32 = 1 << 3;
/// `user_data` of cancellations, whose completions nobody waits for.
const CANCEL_TAG: u64 = u64::MAX;

/// Submission entries of a zero-copy ring: each send is submitted at once, so this is not a
/// limit on sends in flight.
pub const ZC_RING_ENTRIES: u32 = 64;
/// Completion entries: two per send in flight (result and notification); the kernel keeps
/// any overflow (IORING_FEAT_NODROP) and [`ZcRing`] flushes it.
pub const ZC_CQ_ENTRIES: u32 = 4096;
/// Default `[sends] zerocopy_threshold`: 0, off (see `rt::send` for the measurements: on
/// loopback the kernel always copies, and a SEND_ZC that copies costs more than a send).
pub const DEFAULT_ZEROCOPY_THRESHOLD: usize = 0;
/// Default `[sends] zerocopy_fallback_after`: copied notifications in a row after which a
/// connection sends plainly.
pub const DEFAULT_ZEROCOPY_FALLBACK_AFTER: u32 = 2;
/// How long dropping a ring waits for notifications still due before it leaks their memory.
const DROP_WAIT: Duration = Duration::from_millis(200);

/// When a connection sends zero-copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ZcPolicy {
    /// Sends of at least this many bytes go zero-copy; 0 turns zero-copy off.
    pub threshold: usize,
    /// Copied notifications in a row after which the connection sends plainly; 0 never.
    pub fallback_after: u32,
    /// Bytes of a connection's zero-copy sends the kernel may still read (their notification
    /// has not come) above which its sends are plain (see the module docs); `usize::MAX`: no
    /// bound. The server uses the send-queue mark.
    pub max_pinned: usize,
}

impl ZcPolicy {
    /// Whether any send would go zero-copy.
    pub fn enabled(&self) -> bool {
        self.threshold > 0
    }
}

/// Counts of a ring's notifications (for tests and the measurement program).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ZcStats {
    /// Sends submitted.
    pub sends: u64,
    /// Notifications that said the kernel copied.
    pub copied: u64,
    /// Notifications that said it did not.
    pub zero_copied: u64,
}

/// What a connection learned about zero-copy on its socket, and what it has pinned.
#[derive(Default)]
struct Verdict {
    copied_in_a_row: Cell<u32>,
    fallback_after: u32,
    /// Plain sends from now on.
    off: Cell<bool>,
    /// Bytes its sends in the table keep (until their notifications).
    pinned: Cell<usize>,
}

impl Verdict {
    fn notified(&self, copied: bool) {
        if !copied {
            self.copied_in_a_row.set(0);
            return;
        }
        let n = self.copied_in_a_row.get().saturating_add(1);
        self.copied_in_a_row.set(n);
        if self.fallback_after > 0 && n >= self.fallback_after {
            self.off.set(true);
        }
    }
}

/// One send on the ring: it lives in the table until the kernel is done with its memory.
struct Op {
    /// The memory the kernel reads (`None` for a registered buffer, which the ring owns).
    keep: Option<Bytes>,
    /// The first completion's result.
    result: Option<i32>,
    /// The first completion said a notification follows.
    more: bool,
    /// The notification came.
    notified: bool,
    /// A future still wants the result.
    waiting: bool,
    waker: Option<Waker>,
    verdict: Option<Rc<Verdict>>,
    /// Bytes counted in the verdict's `pinned` for this send.
    pinned: usize,
}

impl Drop for Op {
    fn drop(&mut self) {
        // The op leaves the table: the kernel is done with its memory (or the ring leaks it).
        if let Some(v) = &self.verdict {
            v.pinned.set(v.pinned.get().saturating_sub(self.pinned));
        }
    }
}

impl Op {
    /// The kernel posts nothing more for this send.
    fn finished(&self) -> bool {
        self.result.is_some() && (!self.more || self.notified)
    }
}

/// The ring's descriptor, for the reactor.
struct RingFd(RawFd);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

struct Inner {
    // Dropped before `ring`: the reactor forgets the descriptor before it is closed.
    reactor: AsyncFd<RingFd>,
    ring: RefCell<IoUring>,
    ops: RefCell<Slab<Op>>,
    /// Registered buffers (index = `buf_index`); they live as long as the ring.
    fixed: RefCell<Vec<Box<[u8]>>>,
    /// The kernel lacks the copy report: no more zero-copy sends on this ring.
    disabled: Cell<bool>,
    stats: Cell<ZcStats>,
    on_copied: RefCell<Option<Box<dyn Fn()>>>,
}

/// A worker's zero-copy ring (cheap to clone; `!Send`, like the worker). Create it inside
/// the worker's runtime: it registers with the reactor and spawns its reaper task there.
#[derive(Clone)]
pub struct ZcRing {
    inner: Rc<Inner>,
}

impl fmt::Debug for ZcRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZcRing")
            .field("in_flight", &self.inner.ops.borrow().len())
            .field("disabled", &self.inner.disabled.get())
            .field("stats", &self.inner.stats.get())
            .finish()
    }
}

impl ZcRing {
    /// A ring for zero-copy sends, or why there cannot be one (no io_uring, no SEND_ZC in
    /// this kernel, no reactor). Must run inside a `LocalSet` with a tokio reactor (a
    /// tokio-uring runtime is one).
    pub fn new() -> io::Result<Self> {
        let ring = IoUring::builder()
            .setup_cqsize(ZC_CQ_ENTRIES)
            .build(ZC_RING_ENTRIES)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::SendZc::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel has no IORING_OP_SEND_ZC",
            ));
        }
        // SAFETY: the descriptor is the ring's, which `Inner` closes only after dropping
        // `reactor` (field order), so it stays open, and the same file, for the `AsyncFd`'s
        // whole life.
        let reactor = unsafe {
            AsyncFd::register_with_interest(RingFd(ring.as_raw_fd()), tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)?;
        let inner = Rc::new(Inner {
            reactor,
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::new()),
            fixed: RefCell::new(Vec::new()),
            disabled: Cell::new(false),
            stats: Cell::new(ZcStats::default()),
            on_copied: RefCell::new(None),
        });
        tokio::task::spawn_local(reap_loop(inner.clone()));
        Ok(Self { inner })
    }

    /// Call `f` on every notification that says the kernel copied (a metric counter).
    pub fn set_on_copied(&self, f: impl Fn() + 'static) {
        *self.inner.on_copied.borrow_mut() = Some(Box::new(f));
    }

    /// Notification counts so far.
    pub fn stats(&self) -> ZcStats {
        self.inner.stats.get()
    }

    /// Sends on the ring whose memory the kernel may still read.
    pub fn in_flight(&self) -> usize {
        self.inner.ops.borrow().len()
    }

    /// Whether zero-copy sends are off for this ring (the kernel has no copy report).
    pub fn disabled(&self) -> bool {
        self.inner.disabled.get()
    }

    /// Registers `bufs` with this ring as fixed buffers `0..bufs.len()` (replacing none: call
    /// it once). The ring owns them from now on, read-only, until it is dropped.
    pub fn register_buffers(&self, bufs: Vec<Box<[u8]>>) -> io::Result<()> {
        let mut fixed = self.inner.fixed.borrow_mut();
        if !fixed.is_empty() {
            return Err(io::Error::other("buffers are registered already"));
        }
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: each iovec describes a live boxed slice that the ring keeps (in `fixed`,
        // never shrunk, never handed out mutably) until it is dropped, after its last send.
        unsafe {
            self.inner
                .ring
                .borrow()
                .submitter()
                .register_buffers(&iovecs)?
        };
        *fixed = bufs;
        Ok(())
    }

    /// One SEND_ZC of all of `data` (or what the socket takes) on `fd`, reading from `data`'s
    /// own memory, which is kept until the kernel's notification. Resolves to the send's
    /// result (bytes sent, or the error).
    pub fn send(&self, fd: RawFd, data: Bytes) -> SendZc {
        self.send_with(fd, data, None)
    }

    fn send_with(&self, fd: RawFd, data: Bytes, verdict: Option<Rc<Verdict>>) -> SendZc {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let entry = opcode::SendZc::new(types::Fd(fd), data.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .zc_flags(SEND_ZC_REPORT_USAGE)
            .build();
        // SAFETY: the entry reads `len` bytes of `data`, which the op keeps alive (a `Bytes`
        // never moves its bytes) until the kernel's last completion for it.
        unsafe { self.submit(entry, Some(data), verdict) }
    }

    /// One SEND_ZC of registered buffer `index`, bytes `range`, on `fd`.
    pub fn send_fixed(&self, fd: RawFd, index: usize, range: std::ops::Range<usize>) -> SendZc {
        let fixed = self.inner.fixed.borrow();
        let Some(buf) = fixed.get(index).and_then(|b| b.get(range)) else {
            drop(fixed);
            return SendZc::failed(self, io::ErrorKind::InvalidInput);
        };
        let (ptr, len) = (buf.as_ptr(), u32::try_from(buf.len()).unwrap_or(u32::MAX));
        drop(fixed);
        let entry = opcode::SendZc::new(types::Fd(fd), ptr, len)
            .buf_index(Some(index as u16))
            .flags(libc::MSG_NOSIGNAL)
            .zc_flags(SEND_ZC_REPORT_USAGE)
            .build();
        // SAFETY: the bytes lie in a registered buffer the ring owns until it is dropped,
        // which waits for (or leaks past) every send's notification.
        unsafe { self.submit(entry, None, None) }
    }

    /// Puts `entry` in the table and submits it.
    ///
    /// # Safety
    /// The memory `entry` reads must stay valid until the op leaves the table (`keep` or
    /// the ring's registered buffers hold it).
    unsafe fn submit(
        &self,
        entry: squeue::Entry,
        keep: Option<Bytes>,
        verdict: Option<Rc<Verdict>>,
    ) -> SendZc {
        let pinned = match (&keep, &verdict) {
            (Some(data), Some(v)) => {
                v.pinned.set(v.pinned.get().saturating_add(data.len()));
                data.len()
            }
            _ => 0,
        };
        let key = self.inner.ops.borrow_mut().insert(Op {
            keep,
            result: None,
            more: false,
            notified: false,
            waiting: true,
            waker: None,
            verdict,
            pinned,
        });
        let entry = entry.user_data(key as u64);
        let mut ring = self.inner.ring.borrow_mut();
        // SAFETY: the caller keeps the memory valid until the op leaves the table, which
        // happens only after the kernel's last completion for `key`.
        let mut pushed = unsafe { ring.submission().push(&entry) }.is_ok();
        if !pushed {
            // The queue is full of entries a failed submit left behind: flush and retry.
            let _ = ring.submit();
            // SAFETY: as above.
            pushed = unsafe { ring.submission().push(&entry) }.is_ok();
        }
        if !pushed {
            drop(ring);
            self.inner.ops.borrow_mut().remove(key);
            return SendZc::failed(self, io::ErrorKind::WouldBlock);
        }
        // An error here (EAGAIN, EBUSY) leaves the entry queued: the next submit or reap
        // flushes it, and the send completes then.
        let _ = ring.submit();
        drop(ring);
        let mut s = self.inner.stats.get();
        s.sends += 1;
        self.inner.stats.set(s);
        SendZc {
            ring: self.inner.clone(),
            key: Some(key),
            failed: None,
        }
    }
}

/// The result of one SEND_ZC: bytes sent, or the error.
pub struct SendZc {
    ring: Rc<Inner>,
    /// `None` once resolved (or for a send that could not be submitted).
    key: Option<usize>,
    failed: Option<io::ErrorKind>,
}

impl SendZc {
    fn failed(ring: &ZcRing, kind: io::ErrorKind) -> Self {
        Self {
            ring: ring.inner.clone(),
            key: None,
            failed: Some(kind),
        }
    }
}

impl Future for SendZc {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(key) = self.key else {
            let kind = self.failed.unwrap_or(io::ErrorKind::Other);
            return Poll::Ready(Err(io::Error::new(kind, "send could not be submitted")));
        };
        let mut ops = self.ring.ops.borrow_mut();
        let op = &mut ops[key];
        let Some(res) = op.result else {
            if !op.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                op.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        };
        op.waiting = false;
        op.waker = None;
        if op.finished() {
            ops.remove(key);
        }
        drop(ops);
        self.key = None;
        Poll::Ready(if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        })
    }
}

impl Drop for SendZc {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut ops = self.ring.ops.borrow_mut();
        let op = &mut ops[key];
        op.waiting = false;
        op.waker = None;
        if op.result.is_none() {
            // Still in the kernel (a full socket buffer): cancel it. The entry stays until
            // the kernel's completions come, so the memory outlives the kernel's reads.
            drop(ops);
            let cancel = opcode::AsyncCancel::new(key as u64)
                .build()
                .user_data(CANCEL_TAG);
            let mut ring = self.ring.ring.borrow_mut();
            // SAFETY: a cancellation reads no user memory.
            if unsafe { ring.submission().push(&cancel) }.is_ok() {
                let _ = ring.submit();
            }
        } else if op.finished() {
            ops.remove(key);
        }
    }
}

impl Inner {
    /// Takes every completion, resolves sends, frees memory the kernel is done with and
    /// reports notifications.
    fn reap(&self) {
        let mut wakers = Vec::new();
        let mut verdicts: Vec<(Option<Rc<Verdict>>, bool)> = Vec::new();
        let mut freed: Vec<Bytes> = Vec::new();
        {
            let mut ring = self.ring.borrow_mut();
            let mut ops = self.ops.borrow_mut();
            // Bounded: a kernel that keeps refusing to flush its overflow must not spin us.
            for _ in 0..4 {
                for cqe in ring.completion() {
                    let tag = cqe.user_data();
                    if tag == CANCEL_TAG {
                        continue;
                    }
                    let key = tag as usize;
                    let Some(op) = ops.get_mut(key) else { continue };
                    let flags = cqe.flags();
                    if flags & CQE_F_NOTIF != 0 {
                        op.notified = true;
                        let copied = (cqe.result() as u32) & NOTIF_USAGE_ZC_COPIED != 0;
                        verdicts.push((op.verdict.clone(), copied));
                    } else {
                        op.result = Some(cqe.result());
                        op.more = cqueue::more(flags);
                        if cqe.result() == -libc::EINVAL {
                            // No copy report in this kernel (before 6.2).
                            self.disabled.set(true);
                        }
                        if let Some(w) = op.waker.take() {
                            wakers.push(w);
                        }
                    }
                    if op.finished() && !op.waiting {
                        if let Some(b) = ops.remove(key).keep.take() {
                            freed.push(b);
                        }
                    }
                }
                // Completions the CQ had no room for wait in the kernel: flush them (and any
                // entry a failed submit left queued), then take them too.
                let sq = ring.submission();
                let overflow = sq.cq_overflow();
                let queued = !sq.is_empty();
                drop(sq);
                if overflow || queued {
                    // With the overflow flag set, submit enters with GETEVENTS, which flushes.
                    let _ = ring.submit();
                }
                if !overflow {
                    break;
                }
            }
        }
        drop(freed);
        let mut stats = self.stats.get();
        for (verdict, copied) in verdicts {
            if copied {
                stats.copied += 1;
                if let Some(f) = self.on_copied.borrow().as_ref() {
                    f();
                }
            } else {
                stats.zero_copied += 1;
            }
            if let Some(v) = verdict {
                v.notified(copied);
            }
        }
        self.stats.set(stats);
        for w in wakers {
            w.wake();
        }
    }
}

async fn reap_loop(inner: Rc<Inner>) {
    loop {
        let Ok(mut guard) = inner.reactor.readable().await else {
            return;
        };
        inner.reap();
        // Cleared only if no new readiness came while reaping (tokio compares ticks), so a
        // completion posted meanwhile is not lost.
        guard.clear_ready();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The runtime is going away with sends still in the kernel: wait a little for their
        // notifications, then leak what is left rather than free memory the kernel may still
        // read.
        let deadline = Instant::now() + DROP_WAIT;
        loop {
            let _ = self.ring.borrow().submit();
            self.reap();
            if self.ops.borrow().is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut ops = self.ops.borrow_mut();
        if !ops.is_empty() {
            for (_, op) in ops.iter_mut() {
                std::mem::forget(op.keep.take());
            }
            std::mem::forget(std::mem::take(&mut *self.fixed.borrow_mut()));
        }
    }
}

/// A connection's zero-copy sender: the worker's ring, the policy and what this socket's
/// notifications said.
#[derive(Clone)]
pub struct ZcConn {
    ring: ZcRing,
    policy: ZcPolicy,
    verdict: Rc<Verdict>,
}

impl fmt::Debug for ZcConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZcConn")
            .field("policy", &self.policy)
            .field("copied_in_a_row", &self.verdict.copied_in_a_row.get())
            .field("off", &self.verdict.off.get())
            .finish()
    }
}

/// What [`ZcConn::send_all`] did.
#[derive(Debug)]
pub struct ZcSent {
    /// Bytes sent zero-copy (all of them unless the connection fell back on the way).
    pub bytes: usize,
    /// SEND_ZC operations it took.
    pub ops: u32,
}

impl ZcConn {
    /// A connection's sender on `ring` under `policy`.
    pub fn new(ring: ZcRing, policy: ZcPolicy) -> Self {
        let verdict = Rc::new(Verdict {
            fallback_after: policy.fallback_after,
            ..Verdict::default()
        });
        Self {
            ring,
            policy,
            verdict,
        }
    }

    /// Whether a send of `len` bytes should go zero-copy now.
    pub fn wants(&self, len: usize) -> bool {
        self.policy.enabled()
            && len >= self.policy.threshold
            && !self.verdict.off.get()
            && !self.ring.disabled()
            && self.may_pin(len)
    }

    /// Whether `len` more bytes may be pinned: they fit under the bound with what is pinned,
    /// or nothing is pinned.
    fn may_pin(&self, len: usize) -> bool {
        let pinned = self.verdict.pinned.get();
        pinned == 0 || pinned.saturating_add(len) <= self.policy.max_pinned
    }

    /// Bytes this connection's zero-copy sends keep pinned until their notifications.
    pub fn pinned(&self) -> usize {
        self.verdict.pinned.get()
    }

    /// Whether this connection has fallen back to plain sends.
    pub fn fell_back(&self) -> bool {
        self.verdict.off.get()
    }

    /// Sends `data` zero-copy on `fd` until all is sent, an error, the connection falls
    /// back (the copy report, or a socket or kernel without SEND_ZC), or the rest would pin
    /// more than the policy's `max_pinned`: then `Ok` with the bytes sent so far, and the
    /// caller sends the rest plainly.
    pub async fn send_all(&self, fd: RawFd, data: &Bytes) -> (io::Result<()>, ZcSent) {
        let mut sent = ZcSent { bytes: 0, ops: 0 };
        while sent.bytes < data.len() {
            if self.verdict.off.get()
                || self.ring.disabled()
                || !self.may_pin(data.len() - sent.bytes)
            {
                break;
            }
            let rest = data.slice(sent.bytes..);
            let res = self
                .ring
                .send_with(fd, rest, Some(self.verdict.clone()))
                .await;
            sent.ops += 1;
            match res {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "peer accepted no bytes");
                    return (Err(e), sent);
                }
                Ok(n) => sent.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    // This socket cannot send zero-copy (AF_UNIX): plain sends from now on.
                    self.verdict.off.set(true);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.ring.disabled() => {}
                Err(e) => return (Err(e), sent),
            }
        }
        (Ok(()), sent)
    }
}
