//! Multishot receives into kernel-picked buffers, on a small io_uring of the worker's own.
//!
//! This module owns: the worker's receive ring ([`RecvRing`]) and the task that reaps it, its
//! ring of provided buffers (`IORING_REGISTER_PBUF_RING`) and their memory, and each
//! connection's receive state ([`RingRecv`]).
//!
//! How a connection reads: one multishot `IORING_OP_RECV` stays armed on its socket. Whenever
//! bytes arrive, the kernel picks a free buffer from the ring, copies them in and posts a
//! completion naming the buffer; the reaper queues it on the connection and wakes it. The
//! connection hands the bytes to its engine and gives the buffer back to the ring. So a
//! request costs no `recv(2)` and no re-arming. Arming is not a system call of its own
//! either: a connection queues its receive and wakes the reaper, which submits every receive
//! queued since its last pass in one `io_uring_enter` (a queued receive holds its socket open
//! until then, so its descriptor cannot be reused under it).
//!
//! Why a ring of its own: tokio-uring 0.5 takes single-completion operations only (its
//! custom-operation API completes on the first completion and forgets the rest), and a
//! multishot receive posts many. An eventfd registered with the ring sits in the worker's
//! tokio reactor (an [`AsyncFd`]) and one task per worker reaps the ring when it fires.
//!
//! What wakes the worker, and why no completion waits unseen: the ring is built with
//! `COOP_TASKRUN` and *without* `DEFER_TASKRUN`. When bytes reach a socket, the kernel's wake-up
//! (in the sender's softirq) queues task work on the worker thread, which wakes the thread if
//! it sleeps in `epoll_wait` (`TWA_SIGNAL_NO_IPI` skips only the interrupt of a thread that is
//! running, and a running thread meets the work on its next return from the kernel). The task
//! work copies the bytes and posts the completion in the worker's own context, where the
//! kernel signals the eventfd at once; the reactor sees it in the same `epoll_wait`. With
//! `DEFER_TASKRUN` the eventfd was signalled from the sender's softirq instead, and kernel
//! 6.18 deferred that signal to an RCU callback (`io_eventfd_signal` → `call_rcu_hurry`):
//! every request on a quiet worker waited a grace period, ~16 ms (issue 21; `perf record -e
//! io_uring:io_uring_task_add -e sched:sched_wakeup` showed the worker woken from an interrupt
//! 16-20 ms after each `task_add`, and woken by the sender itself once the flag was gone).
//!
//! Limits, and what happens at them:
//! - The ring has `buffers` buffers of `buffer_size` bytes for all the worker's connections,
//!   with no buffer held by an idle connection. When none is free, the kernel ends the
//!   receive of the connection that needed one (`ENOBUFS`); that connection reads its next
//!   bytes with a plain `recv(2)` into a worker buffer, as the readiness path does, and arms
//!   again once its socket is empty. Each such ending is counted (`on_exhausted`).
//! - A connection that stops reading (its engine is waiting on a slow application, or its
//!   peer never reads the responses) would let the kernel go on filling buffers for it. Each
//!   receive is armed with a byte limit of [`MAX_QUEUED`] buffers (the kernel's
//!   `IORING_RECV_MSHOT_LIM`, 6.15 and later; older kernels refuse it with `EINVAL` and the
//!   ring arms without it from then on), after which the kernel ends it; and once
//!   [`MAX_QUEUED`] received buffers wait for a connection, its receive is cancelled (small
//!   segments, older kernels). Either way its socket buffer fills and TCP pushes back on the
//!   peer; the next read arms again.
//!
//! Lifetimes: a connection's slot lives until the kernel's last completion for it (one
//! without `IORING_CQE_F_MORE`), even after the connection is gone: dropping a [`RingRecv`]
//! cancels its receive and gives its buffers back, and the reaper frees the slot on the final
//! completion. The buffer memory lives as long as the ring; dropping the ring cancels every
//! receive and leaks the memory if the kernel has not confirmed them all.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, types, IoUring};
use slab::Slab;
use tokio::io::unix::AsyncFd;

/// Default `[receives] buffers`: 0, multishot receives off. Since they no longer defer their
/// task work (see the module docs), they cost more server CPU per request than readiness
/// reads on io_uring at 32 kept-alive connections (15.9 against 12.1 µs, epoll 14.9; issue 21's
/// closing note), and no less a connection per request; a deployment that measures them
/// cheaper turns them on with a count (64 is a good start).
pub const DEFAULT_RECV_BUFFERS: usize = 0;
/// Default `[receives] buffer_size`.
pub const DEFAULT_RECV_BUFFER_SIZE: usize = 16 * 1024;
/// Most provided buffers in one ring (the kernel's limit).
pub const MAX_RECV_BUFFERS: usize = 1 << 15;
/// Largest provided buffer: a completion reports at most `i32::MAX` bytes.
pub const MAX_RECV_BUFFER_SIZE: usize = 1 << 30;
/// Received buffers that may wait for a connection before its receive is cancelled.
pub const MAX_QUEUED: usize = 2;
/// Submission entries: receives and cancellations are submitted at once, one at a time.
const SQ_ENTRIES: u32 = 64;
/// Completion entries; the kernel keeps any overflow (IORING_FEAT_NODROP) and the reaper
/// flushes it.
const CQ_ENTRIES: u32 = 4096;
/// The buffer group of the ring's provided buffers.
const GROUP: u16 = 0;
/// `IORING_ENTER_GETEVENTS` (not exported by `io-uring` 0.6).
const ENTER_GETEVENTS: u32 = 1;
/// `user_data` of cancellations, whose completions nobody waits for.
const CANCEL_TAG: u64 = u64::MAX;
/// How long dropping a ring waits for its receives to end before it leaks their buffers.
const DROP_WAIT: Duration = Duration::from_millis(200);

/// Count and size of a worker's provided receive buffers; a count of 0 turns multishot
/// receives off (reads wait for readiness). The `[receives]` table of the settings file.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecvConfig {
    /// Buffers per worker, rounded up to a power of two (at most 32,768, the kernel's limit).
    pub buffers: usize,
    /// Bytes per buffer: the most one completion delivers.
    #[serde(with = "crate::settings::units::bytes")]
    pub buffer_size: usize,
}

impl Default for RecvConfig {
    fn default() -> Self {
        Self {
            buffers: DEFAULT_RECV_BUFFERS,
            buffer_size: DEFAULT_RECV_BUFFER_SIZE,
        }
    }
}

impl RecvConfig {
    /// Whether multishot receives are on.
    pub fn enabled(&self) -> bool {
        self.buffers > 0 && self.buffer_size > 0
    }

    /// The ring's buffer count: `buffers` rounded up to a power of two (the kernel's ring
    /// size), between 1 and [`MAX_RECV_BUFFERS`].
    fn buffer_count(&self) -> u16 {
        self.buffers
            .clamp(1, MAX_RECV_BUFFERS)
            .next_power_of_two()
            .min(MAX_RECV_BUFFERS) as u16
    }
}

/// `struct io_uring_buf`, one entry of a provided-buffer ring (the kernel's ABI). The first
/// entry's `resv` is the ring's tail.
#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// The provided buffers: the ring of entries the kernel takes them from, and their memory.
struct Buffers {
    /// `count` entries, page-aligned, shared with the kernel.
    entries: NonNull<BufEntry>,
    /// `count * size` bytes; buffer `bid` starts at `bid * size`.
    data: NonNull<u8>,
    count: u16,
    size: usize,
    /// Our copy of the ring's tail (we are its only writer).
    tail: Cell<u16>,
}

impl Buffers {
    fn entries_layout(count: u16) -> std::alloc::Layout {
        let bytes = usize::from(count) * std::mem::size_of::<BufEntry>();
        std::alloc::Layout::from_size_align(bytes, 4096).expect("entry ring layout")
    }

    fn data_layout(count: u16, size: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(usize::from(count) * size, 64).expect("data layout")
    }

    /// `count` (a power of two, at most 2^15) buffers of `size` bytes, all in the ring.
    fn new(count: u16, size: usize) -> io::Result<Self> {
        // SAFETY: both layouts have a non-zero size (count and size are at least 1).
        let entries = unsafe { std::alloc::alloc_zeroed(Self::entries_layout(count)) };
        let entries = NonNull::new(entries.cast::<BufEntry>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: as above. Zeroed so that the memory is initialised for `slice` (calloc'd
        // pages cost nothing until the kernel writes them).
        let data = unsafe { std::alloc::alloc_zeroed(Self::data_layout(count, size)) };
        let Some(data) = NonNull::new(data) else {
            // SAFETY: allocated just above with this layout.
            unsafe { std::alloc::dealloc(entries.as_ptr().cast(), Self::entries_layout(count)) };
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        let bufs = Self {
            entries,
            data,
            count,
            size,
            tail: Cell::new(0),
        };
        for bid in 0..count {
            bufs.give(bid);
        }
        Ok(bufs)
    }

    /// The shared tail, in the first entry.
    fn tail_ref(&self) -> &AtomicU16 {
        // SAFETY: `resv` of entry 0 is a u16 the kernel reads as the ring's tail; it is
        // aligned for an AtomicU16 and lives as long as `self`. Every access of ours to it
        // goes through this atomic.
        unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.entries.as_ptr()).resv)) }
    }

    /// Puts buffer `bid` back in the ring for the kernel to fill.
    fn give(&self, bid: u16) {
        debug_assert!(bid < self.count);
        let tail = self.tail.get();
        let index = usize::from(tail & (self.count - 1));
        // SAFETY: `index < count`, so the entry is inside the allocation. The kernel reads
        // only entries between its head and the published tail; this one is past the tail
        // until the store below publishes it. The writes leave `resv` (the tail, in entry 0)
        // alone.
        unsafe {
            let e = self.entries.as_ptr().add(index);
            std::ptr::addr_of_mut!((*e).addr).write(self.addr(bid) as u64);
            std::ptr::addr_of_mut!((*e).len).write(self.size as u32);
            std::ptr::addr_of_mut!((*e).bid).write(bid);
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        self.tail_ref().store(tail, Ordering::Release);
    }

    fn addr(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid < count`, so the offset stays inside the data allocation.
        unsafe { self.data.as_ptr().add(usize::from(bid) * self.size) }
    }

    /// The first `len` bytes of buffer `bid`, which the kernel handed over and which is not
    /// in the ring.
    fn slice(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size);
        // SAFETY: inside the allocation (checked above), initialised (zeroed, then written by
        // the kernel), and not written while borrowed: the kernel writes only buffers in the
        // ring, and this one goes back only through `give`, after the borrow ends.
        unsafe { std::slice::from_raw_parts(self.addr(bid), len) }
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring that used them is gone (or
        // the caller leaked `self` instead of dropping it).
        unsafe {
            std::alloc::dealloc(
                self.entries.as_ptr().cast(),
                Self::entries_layout(self.count),
            );
            std::alloc::dealloc(self.data.as_ptr(), Self::data_layout(self.count, self.size));
        }
    }
}

/// One connection's receive state, kept until the kernel's last completion for it.
#[derive(Default)]
struct Slot {
    /// Received buffers (id, bytes) not yet read.
    queued: VecDeque<(u16, u32)>,
    /// How the socket ended: 0 at end of stream, a negative errno on an error.
    end: Option<i32>,
    /// A multishot receive is in the kernel (until a completion without `F_MORE`).
    armed: bool,
    /// Its cancellation is submitted.
    cancelling: bool,
    /// It was armed with a byte limit (see [`Inner::limit`]).
    limited: bool,
    /// The last receive ended for want of buffers: read plainly before arming again.
    starved: bool,
    /// The connection is gone; the slot waits for the final completion.
    orphan: bool,
    waker: Option<Waker>,
}

struct Inner {
    /// The ring's eventfd, in the worker's reactor.
    reactor: AsyncFd<OwnedFd>,
    /// The sockets of receives queued and not yet submitted, kept open until they are.
    unsubmitted: RefCell<Vec<Rc<dyn Any>>>,
    /// The reaper, to be woken when a receive is queued.
    reaper: RefCell<Option<Waker>>,
    ring: RefCell<IoUring>,
    slots: RefCell<Slab<Slot>>,
    // Dropped after `ring` (or leaked): the kernel may fill buffers until the ring is gone.
    bufs: std::mem::ManuallyDrop<Buffers>,
    on_exhausted: RefCell<Option<Box<dyn Fn()>>>,
    /// Buffers the kernel has handed over and that are not back in the ring.
    held: Cell<usize>,
    /// The byte limit each multishot receive is armed with, until the kernel refuses it.
    limit: Cell<Option<u32>>,
}

/// A worker's receive ring (cheap to clone; `!Send`, like the worker). Create it inside the
/// worker's runtime: it registers with the reactor and spawns its reaper task there.
#[derive(Clone)]
pub struct RecvRing {
    inner: Rc<Inner>,
}

impl fmt::Debug for RecvRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvRing")
            .field("buffers", &self.inner.bufs.count)
            .field("buffer_size", &self.inner.bufs.size)
            .field("slots", &self.inner.slots.borrow().len())
            .field("held", &self.inner.held.get())
            .finish()
    }
}

impl RecvRing {
    /// A receive ring with the buffers `cfg` asks for, or why there cannot be one (no
    /// io_uring, no provided-buffer rings or multishot receives in this kernel, no reactor).
    /// Must run inside a `LocalSet` with a tokio reactor (a tokio-uring runtime is one).
    pub fn new(cfg: RecvConfig) -> io::Result<Self> {
        if !cfg.enabled() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "multishot receives are off",
            ));
        }
        let count = cfg.buffer_count();
        let size = cfg.buffer_size.min(MAX_RECV_BUFFER_SIZE);
        // No DEFER_TASKRUN: see the module docs (it made the eventfd signal wait for an RCU
        // grace period on a quiet worker).
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(SQ_ENTRIES)?;
        let bufs = Buffers::new(count, size)?;
        // SAFETY: `entries` is a page-aligned array of `count` entries that lives, with the
        // buffers it points to, until the ring is gone (`Inner::drop`).
        unsafe {
            ring.submitter()
                .register_buf_ring(bufs.entries.as_ptr() as u64, count, GROUP)?
        };
        // The kernel signals this eventfd when work for the ring is pending; the reactor
        // watches it (edge-triggered: each signal is one readiness, so it is never read).
        // SAFETY: eventfd(2) takes no pointer; a non-negative result is a new descriptor we
        // own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is open and owned by nothing else.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        ring.submitter().register_eventfd(efd.as_raw_fd())?;
        // SAFETY: the `AsyncFd` owns the descriptor and closes it only after deregistering it.
        let reactor =
            unsafe { AsyncFd::register_with_interest(efd, tokio::io::Interest::READABLE) }?;
        let inner = Rc::new(Inner {
            reactor,
            unsubmitted: RefCell::new(Vec::new()),
            reaper: RefCell::new(None),
            ring: RefCell::new(ring),
            slots: RefCell::new(Slab::new()),
            bufs: std::mem::ManuallyDrop::new(bufs),
            on_exhausted: RefCell::new(None),
            held: Cell::new(0),
            limit: Cell::new(u32::try_from(MAX_QUEUED * size).ok()),
        });
        tokio::task::spawn_local(reap_loop(inner.clone()));
        Ok(Self { inner })
    }

    /// Call `f` each time a receive ends for want of a free buffer (a metric counter).
    pub fn set_on_exhausted(&self, f: impl Fn() + 'static) {
        *self.inner.on_exhausted.borrow_mut() = Some(Box::new(f));
    }

    /// Connections (or their leftovers) the ring still tracks.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.inner.slots.borrow().len()
    }

    /// Buffers handed to connections (read or waiting to be) and not yet given back.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.inner.held.get()
    }

    /// A connection's receive state on this ring; nothing is armed until its first read.
    pub fn connection(&self) -> RingRecv {
        let key = self.inner.slots.borrow_mut().insert(Slot::default());
        RingRecv {
            ring: self.inner.clone(),
            key,
            borrowed: None,
            ending: false,
        }
    }
}

/// What [`RingRecv::poll_recv`] found.
#[derive(Debug)]
pub enum Received {
    /// This many bytes, readable through [`RingRecv::filled`] until the next call or
    /// [`RingRecv::release`]; 0 at the end of the stream.
    Bytes(usize),
    /// No buffer was free: read what the socket holds another way, then call again (which
    /// arms the receive anew).
    Starved,
}

/// One connection's receives on the worker's ring.
pub struct RingRecv {
    ring: Rc<Inner>,
    key: usize,
    /// The buffer (id, bytes) whose bytes the caller reads now.
    borrowed: Option<(u16, u32)>,
    /// The socket is shut down, so an armed receive ends without a cancellation.
    ending: bool,
}

impl RingRecv {
    /// The next received bytes on `socket` (this connection's), waiting for them. Arming a
    /// receive keeps a handle to `socket` until the receive is submitted.
    pub fn poll_recv<S: AsRawFd + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Rc<S>,
    ) -> Poll<io::Result<Received>> {
        self.release();
        let mut slots = self.ring.slots.borrow_mut();
        let slot = &mut slots[self.key];
        if let Some(chunk) = slot.queued.pop_front() {
            self.borrowed = Some(chunk);
            return Poll::Ready(Ok(Received::Bytes(chunk.1 as usize)));
        }
        if let Some(end) = slot.end {
            return Poll::Ready(match end {
                0 => Ok(Received::Bytes(0)),
                e => Err(io::Error::from_raw_os_error(-e)),
            });
        }
        if slot.starved {
            slot.starved = false;
            return Poll::Ready(Ok(Received::Starved));
        }
        if !slot.armed {
            let entry = opcode::RecvMulti::new(types::Fd(socket.as_raw_fd()), GROUP)
                .build()
                .user_data(self.key as u64);
            let limit = self.ring.limit.get();
            slot.limited = limit.is_some();
            let entry = match limit {
                Some(total) => with_total_limit(entry, total),
                None => entry,
            };
            if let Err(e) = self.ring.push(&entry) {
                return Poll::Ready(Err(e));
            }
            let socket: Rc<dyn Any> = socket.clone();
            self.ring.unsubmitted.borrow_mut().push(socket);
            if let Some(w) = self.ring.reaper.borrow_mut().take() {
                w.wake();
            }
            slot.armed = true;
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The first `n` bytes of the last [`Received::Bytes`].
    pub fn filled(&self, n: usize) -> &[u8] {
        match self.borrowed {
            Some((bid, len)) => &self.ring.bufs.slice(bid, len as usize)[..n],
            None => &[],
        }
    }

    /// Says that the socket has been shut down: its receive ends by itself, so dropping this
    /// need not cancel it (a system call saved per connection).
    pub fn ending(&mut self) {
        self.ending = true;
    }

    /// Gives the last received buffer back to the ring.
    pub fn release(&mut self) {
        if let Some((bid, _)) = self.borrowed.take() {
            self.ring.give_back(bid);
        }
    }
}

impl Drop for RingRecv {
    fn drop(&mut self) {
        self.release();
        let mut slots = self.ring.slots.borrow_mut();
        let slot = &mut slots[self.key];
        for (bid, _) in slot.queued.drain(..) {
            self.ring.give_back(bid);
        }
        if !slot.armed {
            slots.remove(self.key);
            return;
        }
        slot.orphan = true;
        slot.waker = None;
        if !self.ending && !std::mem::replace(&mut slot.cancelling, true) {
            drop(slots);
            self.ring.cancel(self.key);
        }
    }
}

impl Inner {
    /// Puts a buffer the kernel handed over back in the ring.
    fn give_back(&self, bid: u16) {
        self.held.set(self.held.get() - 1);
        self.bufs.give(bid);
    }

    /// Queues `entry` for the next entry into the ring (entering first if the queue is
    /// full).
    fn push(&self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: receives read buffers from the provided ring only, which lives as long as
        // the ring; cancellations read no memory.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        self.enter(&mut ring, false);
        // SAFETY: as above.
        let pushed = unsafe { ring.submission().push(entry) };
        pushed.map_err(|_| io::Error::other("receive ring: submission queue full"))
    }

    /// Enters the ring: submits what is queued and, with `work`, runs the task work pending
    /// for this thread (received bytes whose completions are not posted yet). The sockets of the submitted receives are let go: the
    /// kernel holds its own reference to each from now on.
    fn enter(&self, ring: &mut IoUring, work: bool) {
        let queued = ring.submission().len() as u32;
        if queued == 0 && !work {
            return;
        }
        let flags = if work { ENTER_GETEVENTS } else { 0 };
        // SAFETY: no argument; the queued entries read only memory the ring owns.
        let _ = unsafe {
            ring.submitter()
                .enter::<libc::sigset_t>(queued, 0, flags, None)
        };
        // An error (EAGAIN, EBUSY) leaves entries queued, with their sockets kept, for the
        // next entry.
        if ring.submission().is_empty() {
            self.unsubmitted.borrow_mut().clear();
        }
    }

    /// Cancels the receive of slot `key` (its final completion frees or re-arms the slot).
    fn cancel(&self, key: usize) {
        let entry = opcode::AsyncCancel::new(key as u64)
            .build()
            .user_data(CANCEL_TAG);
        if self.push(&entry).is_ok() {
            // At once: the receive must stop filling buffers for a connection that is gone
            // or not reading.
            self.enter(&mut self.ring.borrow_mut(), false);
        }
    }

    /// Takes every completion: queues received buffers on their connections, notes how
    /// receives ended, and wakes the connections. Returns whether work is left: task work the
    /// kernel still flags as pending, or receives a failed entry left unsubmitted.
    fn reap(&self) -> bool {
        let mut wakers = Vec::new();
        let mut cancels = Vec::new();
        {
            let mut ring = self.ring.borrow_mut();
            // Submits the receives queued since the last pass, and runs any receive whose task
            // work is still pending (one system call; none when there is neither).
            let work = ring.submission().taskrun();
            self.enter(&mut ring, work);
            let mut slots = self.slots.borrow_mut();
            // Bounded: a kernel that keeps refusing to flush its overflow must not spin us.
            for _ in 0..4 {
                for cqe in ring.completion() {
                    if cqe.user_data() == CANCEL_TAG {
                        continue;
                    }
                    let key = cqe.user_data() as usize;
                    let Some(slot) = slots.get_mut(key) else {
                        continue;
                    };
                    let (res, flags) = (cqe.result(), cqe.flags());
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        self.held.set(self.held.get() + 1);
                        match res {
                            n if n > 0 && !slot.orphan => slot.queued.push_back((bid, n as u32)),
                            _ => self.give_back(bid),
                        }
                    }
                    if !cqueue::more(flags) {
                        slot.armed = false;
                        slot.cancelling = false;
                        match res {
                            r if r == -libc::EINVAL && slot.limited => {
                                // This kernel has no multishot byte limit: arm without it.
                                self.limit.set(None);
                            }
                            r if r > 0 || r == -libc::ECANCELED => {}
                            r if r == -libc::ENOBUFS => {
                                slot.starved = true;
                                if let Some(f) = self.on_exhausted.borrow().as_ref() {
                                    f();
                                }
                            }
                            r => slot.end = Some(r),
                        }
                        if slot.orphan {
                            slots.remove(key);
                            continue;
                        }
                    } else if slot.queued.len() >= MAX_QUEUED && !slot.cancelling {
                        // The connection is not reading: stop filling buffers for it.
                        slot.cancelling = true;
                        cancels.push(key);
                    }
                    if let Some(w) = slot.waker.take() {
                        wakers.push(w);
                    }
                }
                // Completions the CQ had no room for wait in the kernel: entering for events
                // flushes them (and submits any entry a failed entry left queued), then take
                // them too.
                if !ring.submission().cq_overflow() {
                    break;
                }
                self.enter(&mut ring, true);
            }
        }
        for key in cancels {
            self.cancel(key);
        }
        for w in wakers {
            w.wake();
        }
        self.ring.borrow_mut().submission().taskrun() || !self.unsubmitted.borrow().is_empty()
    }
}

/// `entry` (a multishot receive) with an overall byte limit: the kernel ends the receive once
/// it has delivered `total` bytes (`sqe->optlen`, the `IORING_RECV_MSHOT_LIM` of 6.15). The
/// `io-uring` crate 0.6 has no setter for it.
fn with_total_limit(entry: io_uring::squeue::Entry, total: u32) -> io_uring::squeue::Entry {
    /// Offset of `optlen` in `struct io_uring_sqe` (the union with `file_index`).
    const OPTLEN: usize = 44;
    // SAFETY: `Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe`, so it has
    // the size and layout of `[u8; 64]`, and any bytes are a valid SQE to hold (the kernel
    // validates what it reads).
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[OPTLEN..OPTLEN + 4].copy_from_slice(&total.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 64], io_uring::squeue::Entry>(raw) }
}

async fn reap_loop(inner: Rc<Inner>) {
    // Work was left after the last pass (task work still flagged, or an entry failed): go
    // again, after the other tasks, without waiting.
    let mut pending = false;
    loop {
        let guard = if pending {
            None
        } else {
            // Woken by the eventfd (work for the ring) or by a connection that queued a
            // receive.
            let ready = std::future::poll_fn(|cx| {
                if !inner.unsubmitted.borrow().is_empty() {
                    return Poll::Ready(Ok(None));
                }
                let mut reaper = inner.reaper.borrow_mut();
                if !reaper.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *reaper = Some(cx.waker().clone());
                }
                drop(reaper);
                inner.reactor.poll_read_ready(cx).map_ok(Some)
            })
            .await;
            match ready {
                Ok(guard) => guard,
                Err(_) => return,
            }
        };
        pending = inner.reap();
        if let Some(mut guard) = guard {
            if !pending {
                // Cleared only if no new readiness came while reaping (tokio compares
                // ticks), so a completion posted meanwhile is not lost.
                guard.clear_ready();
            }
        }
        if pending {
            // Let the woken connections go first.
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Cancel every receive still armed, and wait a little for the kernel to confirm; the
        // buffers are freed only if it did (else leaked, rather than freed under the kernel).
        let armed: Vec<usize> = {
            let slots = self.slots.borrow();
            slots
                .iter()
                .filter(|(_, s)| s.armed && !s.cancelling)
                .map(|(k, _)| k)
                .collect()
        };
        for key in armed {
            self.slots.borrow_mut()[key].orphan = true;
            self.cancel(key);
        }
        for (_, slot) in self.slots.borrow_mut().iter_mut() {
            slot.orphan = true;
        }
        let deadline = Instant::now() + DROP_WAIT;
        loop {
            let _ = self.reap();
            let live = self.slots.borrow().iter().any(|(_, s)| s.armed);
            if !live {
                // SAFETY: no receive is left in the kernel, so nothing writes the buffers;
                // `bufs` is not used after this.
                unsafe { std::mem::ManuallyDrop::drop(&mut self.bufs) };
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_counts_round_up_to_a_power_of_two_within_the_kernels_limit() {
        let count = |buffers| {
            RecvConfig {
                buffers,
                buffer_size: 1,
            }
            .buffer_count()
        };
        assert_eq!(count(1), 1);
        assert_eq!(count(3), 4);
        assert_eq!(count(64), 64);
        assert_eq!(count(65), 128);
        assert_eq!(count(MAX_RECV_BUFFERS - 1), MAX_RECV_BUFFERS as u16);
        assert_eq!(count(MAX_RECV_BUFFERS), MAX_RECV_BUFFERS as u16);
        // Settings refuse more; the ring still clamps.
        assert_eq!(count(MAX_RECV_BUFFERS + 1), MAX_RECV_BUFFERS as u16);
    }
}
