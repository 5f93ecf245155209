//! The per-connection driver: glues one socket (its read and write halves, io_uring or epoll)
//! to one sans-IO [`Channel`] engine and the worker's [`Handler`].
//!
//! All on the worker's thread. One task per connection polls three loops together: the
//! reader (the only read loop of the socket; it ends when the writer shuts the socket down,
//! never by dropping a pending read), the writer (the only one that sends) and the timer (the
//! engine's deadlines). A request's handler is polled once where the request is announced:
//! a handler that answers at once, with a body that is ready and fits under the send-queue
//! mark, is served right there, with no task of its own. Any other request gets a task that
//! awaits the handler, then pulls its response body only while the engine allows
//! (backpressure), with the request's error output beside it when the handler uses a
//! [`Peer`] (such requests always get a task).
//!
//! A connection's share of the worker: it may hold at most `max_requests_per_connection`
//! places in the worker's in-flight count, counting requests its engine already ended whose
//! tasks are still being dropped (an aborted task gives its place back only when the runtime
//! drops it), so a peer that aborts and reuses its ids in a loop is refused on its own
//! connection instead of using up the worker's budget. A request that ended before the driver
//! saw it (aborted in the same read) is never admitted.
//!
//! A connection that is not read (its engine waits for an application to take input, or for
//! the peer to take output) still watches its socket for a hang-up (a reset or an error): the
//! peer that left is noticed at once and its requests are aborted, instead of waiting for a
//! deadline.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use slab::Slab;
use tokio::task::JoinHandle;

use super::request_slots::RequestSlots;
use super::signal::Signal;
use crate::app::{
    build_request, set_content_length, AppStatus, Body, BodyError, BodySource, BoxError, Handler,
    Peer, ResponseBody,
};
use crate::channel::{
    AbortCause, BodyChunk, Channel, CloseReason, Event, InputStream, Limit, Limits, Protocol,
    Rejection, RequestKey, Stat, Timeouts,
};
use crate::metrics::{ListenerLabel, SendMode, SlabKind, WorkerMetrics};

/// The current time on the runtime's clock (tokio's, so that a test runtime with a paused,
/// virtual clock drives the engines' deadlines too).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Largest piece of a response frame queued at once.
const MAX_SLICE: usize = crate::app::MAX_RESPONSE_FRAME;

/// Shortest interval at which a connection's timer loop re-reads the engine's deadlines.
const MIN_TIMER_TICK: Duration = Duration::from_millis(10);

/// The read side of a connection. It owns its buffer (a registered one where available), as
/// io_uring requires: the buffer belongs to the kernel while a read is in flight.
pub trait ReadHalf: 'static {
    /// Reads the next bytes into the half's buffer; returns how many (0 at EOF).
    fn read(&mut self) -> impl Future<Output = io::Result<usize>>;
    /// The first `n` bytes of the buffer: what the last read of `n` bytes got.
    fn filled(&self, n: usize) -> &[u8];
    /// The bytes of the last read were consumed: a half that borrowed a worker buffer for
    /// them gives it back now, so that a connection that waits holds none.
    fn release(&mut self) {}
    /// Resolves when the peer is gone for good (the socket was reset or is in error), for a
    /// connection that is not reading. Never, for a half without a socket to watch. It may
    /// be dropped and called again: it holds at most one watch on the socket.
    fn hung_up(&mut self) -> impl Future<Output = ()> {
        std::future::pending()
    }
}

/// The write side of a connection.
pub trait WriteHalf: 'static {
    /// Sends all of `data`; reports how it was sent.
    fn write_all(&mut self, data: Bytes) -> impl Future<Output = io::Result<SendMode>>;
    /// Shuts both directions down, which ends the reader's pending read.
    fn shutdown(&mut self);
}

/// Per-worker settings and state every connection of the worker shares.
pub struct WorkerShared<H> {
    /// The worker's application instance.
    pub handler: Rc<H>,
    /// The worker's metric handles.
    pub metrics: Rc<WorkerMetrics>,
    /// Engine limits, shared by the worker's engines.
    pub limits: Arc<Limits>,
    /// Engine timeouts.
    pub timeouts: Arc<Timeouts>,
    /// Longest time a handler may take to produce its response head.
    pub handler_timeout: Duration,
    /// Longest time one send may wait for a peer that does not read.
    pub write_timeout: Duration,
    /// Requests in flight on this worker above which new ones are refused.
    pub max_in_flight: usize,
    in_flight: Cell<usize>,
    connections: RefCell<Slab<Weak<dyn Drain>>>,
    draining: Cell<bool>,
}

impl<H: Handler> WorkerShared<H> {
    /// The shared state of a new worker, with the settings' limits and timeouts.
    pub fn new(
        handler: H,
        metrics: Rc<WorkerMetrics>,
        limits: Limits,
        timeouts: Timeouts,
    ) -> Rc<Self> {
        Rc::new(Self {
            handler: Rc::new(handler),
            metrics,
            handler_timeout: timeouts.handler,
            write_timeout: timeouts.write,
            max_in_flight: limits.max_in_flight,
            limits: Arc::new(limits),
            timeouts: Arc::new(timeouts),
            in_flight: Cell::new(0),
            connections: RefCell::new(Slab::new()),
            draining: Cell::new(false),
        })
    }

    /// Connections open on this worker.
    #[cfg(any(test, fuzzing))]
    pub fn connections(&self) -> usize {
        self.connections.borrow().len()
    }

    fn count_connections(&self) {
        let conns = self.connections.borrow();
        self.metrics
            .set_slab(SlabKind::Connections, conns.len(), conns.capacity());
    }

    /// Takes one place in the worker's in-flight count, or `None` at `max_in_flight`. The
    /// place is given back when the returned permit is dropped, however the request ends.
    fn admit(self: &Rc<Self>) -> Option<InFlight<H>> {
        let n = self.in_flight.get();
        if n >= self.max_in_flight {
            return None;
        }
        self.set_in_flight(n + 1, 1.0);
        Some(InFlight {
            worker: self.clone(),
        })
    }

    /// Requests in flight on this worker.
    #[cfg(any(test, fuzzing))] // Checked by the in-memory driver runs (`super::sim`).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    fn set_in_flight(&self, n: usize, delta: f64) {
        self.in_flight.set(n);
        self.metrics.request_in_flight_delta(delta);
        self.metrics
            .set_slab(SlabKind::Requests, n, self.max_in_flight);
    }

    /// Stops new requests on every connection; in-flight ones finish.
    pub fn drain(&self) {
        self.draining.set(true);
        let conns: Vec<_> = self
            .connections
            .borrow()
            .iter()
            .filter_map(|(_, c)| c.upgrade())
            .collect();
        for conn in conns {
            conn.drain();
        }
    }

    /// Ends every remaining connection now (the drain deadline passed).
    pub fn abort_all(&self) {
        let conns: Vec<_> = self
            .connections
            .borrow()
            .iter()
            .filter_map(|(_, c)| c.upgrade())
            .collect();
        for conn in conns {
            conn.abort_all();
        }
    }
}

/// What the worker can ask of any connection, whatever its engine.
trait Drain {
    fn drain(&self);
    fn abort_all(&self);
}

/// One request's place in its worker's in-flight count, from admission until dropped.
///
/// It is created before the request's handler is first polled and held by whatever runs the
/// request (its [`RequestGuard`]), so the place is given back on every path: the request is
/// answered at once, its task ends, its task is aborted before its first poll (an
/// ABORT_REQUEST or a reset read in the same batch as the end of the params), or the runtime
/// drops it at shutdown.
struct InFlight<H: Handler> {
    worker: Rc<WorkerShared<H>>,
}

impl<H: Handler> Drop for InFlight<H> {
    fn drop(&mut self) {
        let n = self.worker.in_flight.get() - 1;
        self.worker.set_in_flight(n, -1.0);
    }
}

struct RequestSlot {
    task: Option<JoinHandle<()>>,
    readers: [Option<Waker>; 2],
    /// The request's task, waiting for the engine to let it produce ([`Event::Writable`]).
    writer: Option<Waker>,
    /// The request's [`Peer`], for handlers that use one.
    peer: Option<Peer>,
}

struct Conn<E, H> {
    engine: RefCell<E>,
    worker: Rc<WorkerShared<H>>,
    requests: RefCell<RequestSlots<RequestSlot>>,
    reader_parked: Cell<bool>,
    /// Places this connection holds in the worker's in-flight count (requests admitted whose
    /// guard is not dropped yet, aborted ones included).
    admitted: Cell<usize>,
    /// `after` is running: a call from within it (a handler polled where its request was
    /// announced) leaves the work to the running one.
    in_after: Cell<bool>,
    reader_wake: Signal,
    writer_wake: Signal,
    timer_wake: Signal,
    /// Bytes the writer holds (taken from the engine, not yet reported sent).
    writing: Cell<usize>,
    finished: Cell<bool>,
    close_reason: Cell<Option<CloseReason>>,
}

/// Serves one accepted connection: sets it up now and returns the future that runs it until
/// it closes. That future is the connection's only task: its reader, writer and timer loops
/// are polled together in it (one allocation per connection, no wake-ups between them).
pub fn serve<E, H, R, W>(
    engine: E,
    reader: R,
    writer: W,
    worker: Rc<WorkerShared<H>>,
    listener: ListenerLabel,
) -> impl Future<Output = ()> + 'static
where
    E: Channel + 'static,
    H: Handler,
    R: ReadHalf,
    W: WriteHalf,
{
    let conn = Rc::new(Conn {
        engine: RefCell::new(engine),
        worker: worker.clone(),
        requests: RefCell::new(RequestSlots::default()),
        reader_parked: Cell::new(false),
        admitted: Cell::new(0),
        in_after: Cell::new(false),
        reader_wake: Signal::default(),
        writer_wake: Signal::default(),
        timer_wake: Signal::default(),
        writing: Cell::new(0),
        finished: Cell::new(false),
        close_reason: Cell::new(None),
    });
    let weak: Weak<dyn Drain> = Rc::downgrade(&conn) as Weak<dyn Drain>;
    let id = worker.connections.borrow_mut().insert(weak);
    worker.count_connections();
    worker.metrics.connection_accepted(listener);
    if worker.draining.get() {
        conn.engine.borrow_mut().drain(now());
    }
    conn.after();
    let registered = Registered {
        conn: conn.clone(),
        id,
        listener,
    };
    // Built here, not in an async block, so that nothing is held twice in the task.
    futures_util::future::join3(
        read_loop(conn.clone(), reader),
        write_loop(conn.clone(), writer),
        timer_loop(conn),
    )
    .map(move |_| drop(registered))
}

/// A connection's place in its worker, given up (with the connection's close counted) when
/// the connection's task ends or is dropped.
struct Registered<E: Channel + 'static, H: Handler> {
    conn: Rc<Conn<E, H>>,
    id: usize,
    listener: ListenerLabel,
}

impl<E: Channel + 'static, H: Handler> Drop for Registered<E, H> {
    fn drop(&mut self) {
        let conn = &self.conn;
        // Whatever still runs can never reach the peer.
        let orphans: Vec<_> = conn
            .requests
            .borrow_mut()
            .drain()
            .filter_map(|s| s.task)
            .collect();
        for task in orphans {
            task.abort();
        }
        let worker = &conn.worker;
        let reason = conn.close_reason.get().unwrap_or(CloseReason::PeerClosed);
        worker.metrics.connection_closed(self.listener, reason);
        worker.connections.borrow_mut().remove(self.id);
        worker.count_connections();
    }
}

impl<E: Channel + 'static, H: Handler> Drain for Conn<E, H> {
    fn drain(&self) {
        self.engine.borrow_mut().drain(now());
        // The engine has a new deadline (the linger) for the timer to pick up.
        self.timer_wake.notify();
        self.writer_wake.notify();
    }

    fn abort_all(&self) {
        let keys: Vec<RequestKey> = self.requests.borrow().keys().collect();
        let now = now();
        for key in keys {
            let _ = self
                .engine
                .borrow_mut()
                .abort(key, AbortCause::Shutdown, now);
        }
        self.close_reason.set(Some(CloseReason::Shutdown));
        self.engine.borrow_mut().handle_write_failed(now);
        self.writer_wake.notify();
    }
}

impl<E: Channel + 'static, H: Handler> Conn<E, H> {
    /// Acts on every pending engine event, then wakes whichever loop has work.
    fn after(self: &Rc<Self>) {
        if self.in_after.replace(true) {
            return;
        }
        loop {
            let event = self.engine.borrow_mut().poll_event();
            match event {
                Some(event) => self.handle_event(event),
                None => break,
            }
        }
        self.in_after.set(false);
        let engine = self.engine.borrow();
        if engine.queued_output() > self.writing.get() || engine.close_reason().is_some() {
            self.writer_wake.notify();
        }
        if engine.wants_read() && self.reader_parked.get() {
            self.reader_parked.set(false);
            self.reader_wake.notify();
        }
    }

    fn handle_event(self: &Rc<Self>, event: Event) {
        match event {
            Event::Request(new) => self.start_request(*new),
            Event::BodyReadable(key, stream) => {
                let waker = self
                    .requests
                    .borrow_mut()
                    .get_mut(key)
                    .and_then(|s| s.readers[stream_index(stream)].take());
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Event::Writable(key) => {
                let waker = self
                    .requests
                    .borrow_mut()
                    .get_mut(key)
                    .and_then(|s| s.writer.take());
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Event::Aborted(key, _) => {
                let slot = self.requests.borrow_mut().remove(key);
                if let Some(task) = slot.and_then(|s| s.task) {
                    task.abort();
                }
            }
            Event::Stat(stat) => self.worker.metrics.record(&stat),
        }
    }

    fn start_request(self: &Rc<Self>, new: crate::channel::NewRequest) {
        let key = new.key;
        let now = now();
        if !self.engine.borrow().is_live(key) {
            // Ended already (aborted in the same read): never admitted, nothing to refuse.
            return;
        }
        if self.admitted.get() >= self.worker.limits.max_requests_per_connection.max(1) {
            // The connection's share of the worker is taken, by requests that are still
            // being dropped after an abort.
            self.worker.metrics.record(&Stat::LimitHit {
                limit: Limit::MaxRequestsPerConnection,
            });
            let _ = self
                .engine
                .borrow_mut()
                .reject(key, Rejection::Overloaded, now);
            return;
        }
        let Some(in_flight) = self.worker.admit() else {
            self.worker.metrics.record(&Stat::LimitHit {
                limit: Limit::MaxInFlight,
            });
            let _ = self
                .engine
                .borrow_mut()
                .reject(key, Rejection::Overloaded, now);
            return;
        };
        let peer = self
            .worker
            .handler
            .uses_peer()
            .then(|| Peer::new(new.protocol == Protocol::FastCgi));
        self.admitted.set(self.admitted.get() + 1);
        let guard = RequestGuard {
            conn: self.clone(),
            key,
            peer: peer.clone(),
            _in_flight: in_flight,
        };
        let length = new.head.content_length;
        let body = Body::stream(
            ConnBody {
                conn: self.clone(),
                key,
                stream: InputStream::Body,
            },
            length,
        );
        let data = new.filter.map(|f| {
            let source = ConnBody {
                conn: self.clone(),
                key,
                stream: InputStream::FilterData,
            };
            Body::stream(source, f.data_length)
        });
        let mut request = build_request(new, body, data);
        if let Some(peer) = &peer {
            request.extensions_mut().insert(peer.clone());
        }
        let deadline = tokio::time::Instant::from_std(now) + self.worker.handler_timeout;
        self.requests.borrow_mut().insert(
            key,
            RequestSlot {
                task: None,
                readers: [None, None],
                writer: None,
                peer,
            },
        );
        let handler = self.worker.handler.clone();
        let head_request = request.method() == http::Method::HEAD;
        let mut call = Box::pin(async move {
            let mut response = handler.call(request).await?;
            set_content_length(&mut response, head_request);
            Ok::<_, BoxError>(response)
        });
        if guard.peer.is_some() {
            // Its error output must be forwarded beside it: that takes a task.
            return self.spawn(key, run_request(guard, call, deadline));
        }
        // The first poll, right here: a handler that registers this no-op waker and returns
        // `Pending` is polled again at once by its task, with the task's waker.
        let mut cx = Context::from_waker(Waker::noop());
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)));
        let result = match polled {
            Ok(Poll::Pending) => return self.spawn(key, run_request(guard, call, deadline)),
            Ok(Poll::Ready(result)) => Ok(result),
            Err(panic) => Err(panic),
        };
        drop(call);
        let Some(mut out) = self.answer(key, result, now) else {
            return;
        };
        match self.poll_send(key, &mut out, &mut cx, now) {
            Poll::Ready(true) => self.finish(key, &out, now),
            Poll::Ready(false) => {}
            Poll::Pending => self.spawn(key, send_response(guard, out)),
        }
    }

    /// Runs the rest of request `key` in a task of its own.
    fn spawn(self: &Rc<Self>, key: RequestKey, task: impl Future<Output = ()> + 'static) {
        let task = tokio::task::spawn_local(task);
        if let Some(slot) = self.requests.borrow_mut().get_mut(key) {
            slot.task = Some(task);
        }
    }

    /// Acts on what the handler returned: queues the response head and hands back the body
    /// to send, or ends the request (`None`) when the handler failed.
    fn answer(
        self: &Rc<Self>,
        key: RequestKey,
        result: std::thread::Result<Result<http::Response<ResponseBody>, BoxError>>,
        now: Instant,
    ) -> Option<Outgoing> {
        let response = match result {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::warn!(%error, "handler failed");
                self.abort_request(key, AbortCause::HandlerError);
                return None;
            }
            Err(_panic) => {
                tracing::error!("handler panicked");
                self.abort_request(key, AbortCause::HandlerError);
                return None;
            }
        };
        let (parts, body) = response.into_parts();
        let sent = self
            .engine
            .borrow_mut()
            .send_head(key, parts.status, &parts.headers, now);
        match sent {
            Ok(true) => {}
            Ok(false) => {
                // A 1xx status where the final one must be: the engine cannot send it, so
                // the request ends as a handler error (a 500, since nothing was sent).
                tracing::warn!(status = %parts.status, "handler answered with an interim status");
                self.abort_request(key, AbortCause::HandlerError);
                return None;
            }
            Err(_) => return None, // Aborted meanwhile: the key is stale.
        }
        self.after();
        Some(Outgoing {
            body,
            app_status: parts.extensions.get::<AppStatus>().cloned(),
            unsent: Bytes::new(),
        })
    }

    /// Queues the response body as far as it goes now: each frame only while the engine
    /// allows, and a large one [`MAX_SLICE`] bytes at a time, so that a whole file in one
    /// `Bytes` overshoots the send-queue mark by one slice at most instead of by its size
    /// (the frame itself stays allocated until its last slice is queued: the handler's to
    /// bound, see [`crate::app::MAX_RESPONSE_FRAME`]).
    /// `Ready(true)` when the body ended (the caller finishes the response), `Ready(false)`
    /// when the request ended otherwise, `Pending` until `cx` is woken.
    fn poll_send(
        self: &Rc<Self>,
        key: RequestKey,
        out: &mut Outgoing,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<bool> {
        loop {
            if self.poll_writable(key, cx, now).is_pending() {
                return Poll::Pending;
            }
            if !out.unsent.is_empty() {
                let slice = out.unsent.split_to(out.unsent.len().min(MAX_SLICE));
                if self
                    .engine
                    .borrow_mut()
                    .send_body(key, &slice, now)
                    .is_err()
                {
                    return Poll::Ready(false);
                }
                self.after();
                continue;
            }
            let body = &mut out.body;
            let frame = std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll_frame(cx)));
            match frame {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(None)) => return Poll::Ready(true),
                Ok(Poll::Ready(Some(Ok(frame)))) => {
                    // CGI responses cannot carry trailers: those are dropped.
                    if let Ok(data) = frame.into_data() {
                        out.unsent = data;
                    }
                }
                Ok(Poll::Ready(Some(Err(error)))) => {
                    tracing::warn!(%error, "response body failed");
                    self.abort_request(key, AbortCause::HandlerError);
                    return Poll::Ready(false);
                }
                Err(_panic) => {
                    tracing::error!("response body panicked");
                    self.abort_request(key, AbortCause::HandlerError);
                    return Poll::Ready(false);
                }
            }
        }
    }

    /// `Ready` when request `key` may produce now; otherwise `cx` is woken by the engine's
    /// [`Event::Writable`].
    fn poll_writable(&self, key: RequestKey, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        if self.engine.borrow_mut().poll_produce(key, now) {
            return Poll::Ready(());
        }
        if let Some(slot) = self.requests.borrow_mut().get_mut(key) {
            match &mut slot.writer {
                Some(w) if w.will_wake(cx.waker()) => {}
                writer => *writer = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }

    /// Ends a response whose body ended.
    fn finish(self: &Rc<Self>, key: RequestKey, out: &Outgoing, now: Instant) {
        let status = out.app_status.as_ref().map_or(0, AppStatus::get);
        let _ = self.engine.borrow_mut().finish(key, status, now);
        self.after();
    }

    /// Ends a request the handler could not complete.
    fn abort_request(self: &Rc<Self>, key: RequestKey, cause: AbortCause) {
        let _ = self.engine.borrow_mut().abort(key, cause, now());
        self.after();
    }
}

/// A response being sent: its body, its appStatus, and what of the body's last frame is not
/// queued yet.
struct Outgoing {
    body: ResponseBody,
    app_status: Option<AppStatus>,
    unsent: Bytes,
}

fn stream_index(stream: InputStream) -> usize {
    match stream {
        InputStream::Body => 0,
        InputStream::FilterData => 1,
    }
}

/// A request's hold on its connection and its worker, owned by whatever runs the request
/// (its task future, or `start_request` for one served at once): dropping it (the request
/// ended, or its task was aborted, even before its first poll) frees the request's slot and
/// its in-flight place.
struct RequestGuard<E: Channel + 'static, H: Handler> {
    conn: Rc<Conn<E, H>>,
    key: RequestKey,
    peer: Option<Peer>,
    _in_flight: InFlight<H>,
}

impl<E: Channel + 'static, H: Handler> Drop for RequestGuard<E, H> {
    fn drop(&mut self) {
        self.conn.admitted.set(self.conn.admitted.get() - 1);
        if let Some(peer) = &self.peer {
            peer.end();
        }
        if let Ok(mut requests) = self.conn.requests.try_borrow_mut() {
            requests.remove(self.key);
        }
    }
}

/// The task of a request whose handler did not answer on its first poll (or that forwards
/// error output): awaits the handler until `deadline`, then sends the response.
async fn run_request<E, H, F>(
    guard: RequestGuard<E, H>,
    call: std::pin::Pin<Box<F>>,
    deadline: tokio::time::Instant,
) where
    E: Channel + 'static,
    H: Handler,
    F: Future<Output = Result<http::Response<ResponseBody>, BoxError>>,
{
    let (conn, key) = (guard.conn.clone(), guard.key);
    let stderr = StderrForward {
        conn: &conn,
        key,
        peer: guard.peer.as_ref(),
    };
    let call = AssertUnwindSafe(call).catch_unwind();
    let Ok(result) = stderr.beside(tokio::time::timeout_at(deadline, call)).await else {
        conn.worker.metrics.record(&Stat::LimitHit {
            limit: Limit::HandlerTimeout,
        });
        return conn.abort_request(key, AbortCause::Timeout);
    };
    if let Some(out) = conn.answer(key, result, now()) {
        send_response(guard, out).await;
    }
}

/// Sends a response's body, with the request's error output beside it, then finishes it.
async fn send_response<E: Channel + 'static, H: Handler>(
    guard: RequestGuard<E, H>,
    mut out: Outgoing,
) {
    let (conn, key) = (&guard.conn, guard.key);
    let stderr = StderrForward {
        conn,
        key,
        peer: guard.peer.as_ref(),
    };
    let sent = std::future::poll_fn(|cx| conn.poll_send(key, &mut out, cx, now()));
    if stderr.beside(sent).await {
        stderr.flush();
        conn.finish(key, &out, now());
    }
}

/// Forwards a request's error output ([`Peer::write_stderr`]) to the engine while the
/// handler runs and while its body is pulled, under the same send-queue mark as the body.
struct StderrForward<'a, E: Channel + 'static, H: Handler> {
    conn: &'a Rc<Conn<E, H>>,
    key: RequestKey,
    peer: Option<&'a Peer>,
}

impl<E: Channel + 'static, H: Handler> StderrForward<'_, E, H> {
    /// Runs `fut` to its end, forwarding error output meanwhile. While the send queue is
    /// over its mark, `fut` waits with the error output (backpressure on both).
    async fn beside<F: Future>(&self, fut: F) -> F::Output {
        let Some(peer) = self.peer else {
            return fut.await;
        };
        let mut fut = std::pin::pin!(fut);
        loop {
            let next = std::future::poll_fn(|cx| {
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Ok(out));
                }
                peer.poll_stderr(cx).map(Err)
            })
            .await;
            let data = match next {
                Ok(out) => return out,
                Err(data) => data,
            };
            std::future::poll_fn(|cx| self.conn.poll_writable(self.key, cx, now())).await;
            if self
                .conn
                .engine
                .borrow_mut()
                .send_stderr(self.key, &data)
                .is_ok()
            {
                self.conn.after();
            }
        }
    }

    /// Sends what error output is queued now (the response is about to end).
    fn flush(&self) {
        let Some(peer) = self.peer else { return };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sent = false;
        while let Poll::Ready(data) = peer.poll_stderr(&mut cx) {
            sent |= self
                .conn
                .engine
                .borrow_mut()
                .send_stderr(self.key, &data)
                .is_ok();
        }
        if sent {
            self.conn.after();
        }
    }
}

/// A request body pulled from the engine's bounded buffer.
struct ConnBody<E: Channel + 'static, H: Handler> {
    conn: Rc<Conn<E, H>>,
    key: RequestKey,
    stream: InputStream,
}

impl<E: Channel + 'static, H: Handler> BodySource for ConnBody<E, H> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        let chunk = self
            .conn
            .engine
            .borrow_mut()
            .poll_body(self.key, self.stream, now());
        match chunk {
            BodyChunk::Data(data) => {
                self.conn.after();
                Poll::Ready(Some(Ok(data)))
            }
            BodyChunk::End => Poll::Ready(None),
            BodyChunk::Broken => Poll::Ready(Some(Err(BodyError))),
            BodyChunk::Pending => {
                if let Some(slot) = self.conn.requests.borrow_mut().get_mut(self.key) {
                    slot.readers[stream_index(self.stream)] = Some(cx.waker().clone());
                }
                self.conn.after();
                Poll::Pending
            }
        }
    }
}

async fn read_loop<E: Channel + 'static, H: Handler, R: ReadHalf>(
    conn: Rc<Conn<E, H>>,
    mut reader: R,
) {
    loop {
        if conn.finished.get() {
            return;
        }
        if !conn.engine.borrow().wants_read() {
            conn.reader_parked.set(true);
            let mut hung_up = std::pin::pin!(reader.hung_up());
            let left = std::future::poll_fn(|cx| {
                if conn.reader_wake.poll_wait(cx).is_ready() {
                    return Poll::Ready(false);
                }
                hung_up.as_mut().poll(cx).map(|()| true)
            })
            .await;
            if left && !conn.finished.get() {
                // The peer reset the connection while it was not read: nothing of what is
                // in flight can reach it.
                tracing::debug!("peer hung up while the connection was not read");
                conn.close_reason.set(Some(CloseReason::IoError));
                conn.engine.borrow_mut().handle_write_failed(now());
                conn.after();
                return;
            }
            continue;
        }
        let result = reader.read().await;
        if conn.finished.get() {
            return; // We shut the socket down ourselves.
        }
        let now = now();
        match result {
            Ok(0) => {
                conn.engine.borrow_mut().handle_read_closed(now);
                conn.after();
                let peers: Vec<Peer> = conn
                    .requests
                    .borrow()
                    .values()
                    .filter_map(|s| s.peer.clone())
                    .collect();
                peers.iter().for_each(Peer::mark_read_closed);
                return;
            }
            Ok(n) => {
                conn.worker.metrics.bytes_received(n);
                let result = conn.engine.borrow_mut().handle_input(reader.filled(n), now);
                reader.release();
                if let Err(error) = result {
                    tracing::debug!(%error, "closing connection: protocol error");
                    conn.close_reason.set(Some(CloseReason::ProtocolError));
                }
                conn.after();
            }
            Err(error) => {
                tracing::debug!(%error, "read failed");
                conn.close_reason.set(Some(CloseReason::IoError));
                conn.engine.borrow_mut().handle_write_failed(now);
                conn.after();
                return;
            }
        }
    }
}

async fn write_loop<E: Channel + 'static, H: Handler, W: WriteHalf>(
    conn: Rc<Conn<E, H>>,
    mut writer: W,
) {
    loop {
        let output = conn.engine.borrow_mut().take_output();
        if let Some(data) = output {
            let n = data.len();
            conn.writing.set(n);
            // Boxed: a send's state (an io_uring one is a few hundred bytes) exists only
            // while it runs, not in every idle connection's task.
            let send = writer.write_all(data);
            let sent = Box::pin(tokio::time::timeout(conn.worker.write_timeout, send)).await;
            conn.writing.set(0);
            let now = now();
            match sent {
                Ok(Ok(mode)) => {
                    conn.worker.metrics.bytes_sent(n);
                    conn.worker.metrics.send(mode);
                    conn.engine.borrow_mut().handle_sent(n, now);
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "send failed");
                    conn.close_reason.set(Some(CloseReason::IoError));
                    conn.engine.borrow_mut().handle_write_failed(now);
                }
                Err(_elapsed) => {
                    conn.worker.metrics.record(&Stat::LimitHit {
                        limit: Limit::WriteTimeout,
                    });
                    conn.close_reason.set(Some(CloseReason::Timeout));
                    conn.engine.borrow_mut().handle_write_failed(now);
                }
            }
            conn.after();
            continue;
        }
        let reason = conn.engine.borrow().close_reason();
        if let Some(reason) = reason {
            if conn.close_reason.get().is_none() {
                conn.close_reason.set(Some(reason));
            }
            break;
        }
        conn.writer_wake.wait().await;
    }
    conn.finished.set(true);
    writer.shutdown();
    conn.reader_wake.notify();
    conn.timer_wake.notify();
}

async fn timer_loop<E: Channel + 'static, H: Handler>(conn: Rc<Conn<E, H>>) {
    // Every deadline the engine computes at time t lies at least `tick` after t (each is some
    // event's time plus a configured timeout, and `tick` is the shortest of those). Waking at
    // least every `tick` therefore never misses one, and the hot path never has to tell this
    // task that a deadline moved: one timer per connection per `tick`, not per request.
    let t = &conn.worker.timeouts;
    // Draining adds the linger deadline, which appears whenever a connection falls idle: then
    // the tick shrinks to the linger time (the drain wakes this task to pick that up).
    let tick = t
        .params
        .min(t.body_idle)
        .min(t.keepalive_idle)
        .max(MIN_TIMER_TICK);
    let draining_tick = tick.min(t.drain_linger).max(MIN_TIMER_TICK);
    // One timer, reset for each wait.
    let sleep = tokio::time::sleep(tick);
    let mut sleep = std::pin::pin!(sleep);
    while !conn.finished.get() {
        let tick = if conn.worker.draining.get() {
            draining_tick
        } else {
            tick
        };
        let deadline = conn.engine.borrow().poll_timeout();
        let wake = deadline.map_or(now() + tick, |d| d.min(now() + tick));
        sleep.as_mut().reset(wake.into());
        let expired = std::future::poll_fn(|cx| {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            conn.timer_wake.poll_wait(cx).map(|()| false)
        })
        .await;
        if expired {
            conn.engine.borrow_mut().handle_timeout(now());
            conn.after();
        }
    }
}
