//! The thread-per-core servers: listeners (TCP, Unix, inherited from systemd), one
//! tokio-uring runtime per worker thread (or a plain tokio runtime where io_uring is
//! unavailable), the registered-buffer pool, the multishot receive ring, the send paths (plain, registered-buffer and
//! zero-copy), service-manager notification and graceful shutdown.
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
