//! The thread-per-core servers: listeners (TCP, Unix, inherited from systemd), one
//! tokio-uring runtime per worker thread (or a plain tokio runtime where io_uring is
//! unavailable), the registered-buffer pool, the multishot receive ring, the send paths (plain, registered-buffer and
//! zero-copy), service-manager notification and graceful shutdown.
//!
//! What wakes a worker, and why no completion can wait unseen. A worker sleeps in one place:
//! tokio's `epoll_wait` (the reactor of its current-thread runtime). Every source of work
//! reaches that wait:
//! - **tokio-uring's ring** (reads, writes, polls, timeouts of the runtime): built with
//!   `COOP_TASKRUN`, no `DEFER_TASKRUN`. A completion that needs the worker's context (a
//!   socket read, a poll) is queued as task work on the worker thread, which wakes it if it
//!   sleeps; the task work posts the completion, and the ring's descriptor, in the reactor,
//!   turns readable.
//! - **The receive ring** ([`recv_ring`]): the same flags; its completions are posted by task
//!   work in the worker's context, which signals the ring's eventfd (in the reactor) at once.
//!   `DEFER_TASKRUN` is not used: with it the eventfd was signalled from the sender's softirq,
//!   and the kernel deferred that signal to an RCU callback, ~16 ms on a quiet worker.
//! - **The zero-copy ring** ([`zerocopy`]): default flags; send completions and the kernel's
//!   buffer notifications are posted through task work the same way, and its descriptor is in
//!   the reactor.
//! - **tokio's reactor itself**: epoll readiness of the listeners, of the epoll backend's
//!   sockets, of signals and of the wake-ups from other threads (an eventfd).
//! - **Timers**: tokio's timer wheel bounds the `epoll_wait` timeout by the next deadline.
//!
//! `tests/latency.rs` checks the result: 300 requests one at a time on every read path and
//! protocol, p99 under 5 ms (a wait for any of these would show as milliseconds).
//!
//! Internal to the crate: applications reach it through [`crate::Server`]. Never parses a
//! protocol: bytes go to and come from the engines in [`crate::channel`].
//!
//! tokio-uring pitfalls this module works around:
//! sockets are created here with `socket2` (its `bind` functions share ports silently and
//! fail on Unix sockets on new kernels); Unix connections are accepted with tokio and
//! wrapped; a pending uring operation is never dropped to cancel it (the socket is shut
//! down instead); the ring is built with `Runtime::new`, never `tokio_uring::start`.

pub mod accept;
pub mod backend;
pub mod bufpool;
pub mod conn;
pub mod driver;
pub mod io;
pub mod listener;
pub mod notify;
pub mod readbuf;
pub mod recv_ring;
#[cfg(test)]
mod recv_ring_tests;
mod request_slots;
pub mod send;
#[cfg(test)]
mod send_tests;
pub mod serve;
pub mod shutdown;
pub mod signal;
#[cfg(any(test, fuzzing))]
// Some script steps are used only by the fuzz target `driver`.
#[cfg_attr(not(fuzzing), allow(dead_code))]
pub mod sim;
pub mod worker;
pub mod zerocopy;
#[cfg(test)]
mod zerocopy_tests;

#[cfg(test)]
mod tests;
