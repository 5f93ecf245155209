//! The thread-per-core servers: listeners, one runtime per worker thread (io_uring, or plain
//! tokio on epoll where io_uring is unavailable), and the per-connection driver that glues a
//! socket to a channel engine and the application. No protocol parsing happens here.

pub mod driver;
pub mod io;
