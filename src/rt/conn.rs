//! The per-connection seam: an accepted connection gets the engine of its listener's protocol
//! and the socket halves of its backend, and the driver ([`super::driver`]) serves it.

use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use futures_util::future::Either;

use super::accept::{Accepted, Stream};
use super::bufpool::BufPool;
use super::driver::{self, WorkerShared};
use super::io;
use super::listener::ListenerProtocol;
use crate::app::Handler;
use crate::channel::{Channel, FastCgiEngine, StreamEngine};
use crate::metrics::ListenerLabel;

/// Maps listener names to their metric labels (a handful: a linear scan).
#[derive(Clone, Debug, Default)]
pub struct ListenerLabels(Vec<(String, ListenerLabel)>);

impl ListenerLabels {
    /// Labels for `names`, in the order [`crate::metrics::ListenerNames`] gave them.
    pub fn new(pairs: Vec<(String, ListenerLabel)>) -> Self {
        Self(pairs)
    }

    fn of(&self, name: &str) -> ListenerLabel {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| *l)
            .unwrap_or_default()
    }
}

/// Sets up one accepted connection; the returned future serves it until it closes (see
/// [`driver::serve`]). Not an `async fn`, so that the engine and the socket live once in the
/// connection's task rather than once per layer.
pub fn serve_connection<H: Handler>(
    conn: Accepted,
    worker: Rc<WorkerShared<H>>,
    labels: Rc<ListenerLabels>,
    bufpool: BufPool,
) -> impl Future<Output = ()> + 'static {
    let label = labels.of(&conn.listener.name);
    let now = Instant::now();
    let (limits, timeouts) = (worker.limits.clone(), worker.timeouts.clone());
    match conn.listener.protocol {
        ListenerProtocol::FastCgi => {
            let engine = FastCgiEngine::new(limits, timeouts, now);
            Either::Left(serve_stream(engine, conn.stream, worker, label, &bufpool))
        }
        ListenerProtocol::Scgi => {
            let engine = StreamEngine::scgi(limits, timeouts, now);
            Either::Right(serve_stream(engine, conn.stream, worker, label, &bufpool))
        }
    }
}

fn serve_stream<E: Channel + 'static, H: Handler>(
    engine: E,
    stream: Stream,
    worker: Rc<WorkerShared<H>>,
    label: ListenerLabel,
    bufpool: &BufPool,
) -> impl Future<Output = ()> + 'static {
    // TCP_NODELAY is set already (`Acceptor::accept`). A registered buffer for this
    // connection's reads while the pool has one (the pool counts every time it has none:
    // ringgate_buffer_pool_exhausted_total); without one, a multishot receive on the worker's
    // receive ring, or else reads that wait for readiness; neither holds a buffer.
    match stream {
        Stream::UringTcp(s) => {
            let fixed = bufpool.try_next();
            let ring = fixed.is_none().then(|| bufpool.receiver()).flatten();
            let (r, w) = io::uring_halves(s, fixed, ring, bufpool.zerocopy());
            Either::Left(Either::Left(driver::serve(engine, r, w, worker, label)))
        }
        Stream::UringUnix(s) => {
            // No zero-copy: the kernel refuses SEND_ZC on AF_UNIX (EOPNOTSUPP).
            let fixed = bufpool.try_next();
            let ring = fixed.is_none().then(|| bufpool.receiver()).flatten();
            let (r, w) = io::uring_halves(s, fixed, ring, None);
            Either::Left(Either::Right(driver::serve(engine, r, w, worker, label)))
        }
        Stream::Tcp(s) => {
            let (r, w) = io::epoll_tcp_halves(s);
            Either::Right(Either::Left(driver::serve(engine, r, w, worker, label)))
        }
        Stream::Unix(s) => {
            let (r, w) = io::epoll_unix_halves(s);
            Either::Right(Either::Right(driver::serve(engine, r, w, worker, label)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_size<A, B, C, D, R>(_: fn(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every idle connection holds its task: tokio adds about 104 bytes to the future and
    /// rounds up to 128, so a task future of at most 920 bytes keeps it in mimalloc's 1 KiB
    /// class (3.7 KiB of RSS per idle io_uring connection, README "Measured figures"); past
    /// that it takes 1,280. The accept loop wraps this future with its connection guard (16
    /// bytes), hence 904 here.
    #[test]
    fn a_connection_task_fits_in_a_kibibyte() {
        let size = output_size(serve_connection::<crate::app::demo::Demo>);
        assert!(size <= 904, "a connection's future grew to {size} bytes");
    }
}
