//! Sans-IO connection engines: one per connection kind.
//!
//! - [`FastCgiEngine`]: FastCGI 1.0 with multiplexing, all three roles, GET_VALUES.
//! - [`StreamEngine`]: one request per connection with an unframed body and response: SCGI
//!   (the head is a netstring) and CGI-on-stdio (the head is the process environment).
//!
//! An engine takes bytes read from the peer and the current time, and gives back [`Event`]s
//! and bytes to send. It never does I/O, never reads a clock and never panics on peer input.
//! The runtime (`rt/`) drives it through the [`Channel`] trait; the call contract is there.

mod canned;
mod deadlines;
pub mod events;
mod fastcgi;
mod input;
mod send_queue;
mod stream;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

pub use events::{AbortCause, CloseReason, Limit, Protocol, ProtocolErrorKind, Side, Stat};
pub use fastcgi::FastCgiEngine;
pub use stream::StreamEngine;

use crate::proto::cgi::{CgiVars, RequestHead};
use crate::proto::fastcgi::Role;

/// Every limit, with its default: the `[limits]` table of the settings file. The engines
/// enforce most of them; `max_connections` and `max_in_flight` are the runtime's. Each one
/// that is hit is counted as `Stat::LimitHit` with its key.
#[derive(Clone, PartialEq, Eq, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Bytes of FastCGI PARAMS (pairs with their lengths) per request (4 GiB at most: a
    /// larger value counts as 4 GiB).
    #[serde(with = "crate::settings::units::bytes")]
    pub max_params_bytes: usize,
    /// FastCGI name-value pairs per request (and SCGI variables per request).
    pub max_params_pairs: usize,
    /// Bytes of an SCGI netstring header (4 GiB at most, like `max_params_bytes`).
    #[serde(with = "crate::settings::units::bytes")]
    pub max_scgi_header_bytes: usize,
    /// Request headers per request: the `HTTP_*` variables turned into headers.
    pub max_headers: usize,
    /// Request body bytes buffered per request before the connection stops reading.
    #[serde(with = "crate::settings::units::bytes")]
    pub max_body_buffer_bytes: usize,
    /// FastCGI requests in flight on one connection (advertised as `FCGI_MAX_REQS`).
    pub max_requests_per_connection: usize,
    /// Connections per worker (advertised as `FCGI_MAX_CONNS`; enforced by the runtime).
    pub max_connections: usize,
    /// Requests in flight per worker; more are refused (FastCGI `OVERLOADED`, SCGI 503).
    /// Enforced by the runtime.
    pub max_in_flight: usize,
    /// Whether FastCGI connections may carry several requests at once (`FCGI_MPXS_CONNS`).
    pub mpxs_conns: bool,
    /// Bytes queued for sending above which response producers are paused and the connection
    /// is no longer read. The queue can pass it by one 64 KiB response slice (or the replies
    /// to one read's records); the README's "Memory per connection" gives the whole worst case.
    #[serde(with = "crate::settings::units::bytes")]
    pub send_queue_high_water: usize,
}

impl Limits {
    /// Default for [`Limits::max_params_bytes`]. nginx's default
    /// `large_client_header_buffers` (4 x 8 KiB) keeps a request's headers under 32 KiB;
    /// 64 KiB leaves room for the CGI variables around them and is also the most HAProxy can
    /// send (it puts all params in one record).
    pub const DEFAULT_MAX_PARAMS_BYTES: usize = 64 * 1024;
    /// Default for [`Limits::max_params_pairs`]. nginx's `fastcgi_params` sends about 20
    /// variables plus one per request header.
    pub const DEFAULT_MAX_PARAMS_PAIRS: usize = 512;
    /// Default for [`Limits::max_scgi_header_bytes`].
    pub const DEFAULT_MAX_SCGI_HEADER_BYTES: usize = 64 * 1024;
    /// Default for [`Limits::max_headers`].
    pub const DEFAULT_MAX_HEADERS: usize = 100;
    /// Default for [`Limits::max_body_buffer_bytes`].
    pub const DEFAULT_MAX_BODY_BUFFER_BYTES: usize = 256 * 1024;
    /// Default for [`Limits::max_requests_per_connection`].
    pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: usize = 64;
    /// Default for [`Limits::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// Default for [`Limits::max_in_flight`].
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
    /// Default for [`Limits::mpxs_conns`].
    pub const DEFAULT_MPXS_CONNS: bool = true;
    /// Default for [`Limits::send_queue_high_water`].
    pub const DEFAULT_SEND_QUEUE_HIGH_WATER: usize = 256 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_params_bytes: Self::DEFAULT_MAX_PARAMS_BYTES,
            max_params_pairs: Self::DEFAULT_MAX_PARAMS_PAIRS,
            max_scgi_header_bytes: Self::DEFAULT_MAX_SCGI_HEADER_BYTES,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_body_buffer_bytes: Self::DEFAULT_MAX_BODY_BUFFER_BYTES,
            max_requests_per_connection: Self::DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            mpxs_conns: Self::DEFAULT_MPXS_CONNS,
            send_queue_high_water: Self::DEFAULT_SEND_QUEUE_HIGH_WATER,
        }
    }
}

/// Every timeout, with its default: the `[timeouts]` table of the settings file. The engines
/// enforce `params`, `body_idle` and `keepalive_idle`; the runtime the others.
#[derive(Clone, PartialEq, Eq, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// From the start of a request (FastCGI BEGIN_REQUEST, SCGI connection) to its complete head.
    #[serde(with = "crate::settings::units::duration")]
    pub params: Duration,
    /// Longest time a request's open input (body, FILTER data) may go without moving: no
    /// bytes arriving for it and none taken by its application. It applies in every phase,
    /// also while the connection is not read because this request's buffer is full; only a
    /// request with nothing buffered that waits for a paused connection is not charged, and
    /// its clock restarts when reading resumes.
    #[serde(with = "crate::settings::units::duration")]
    pub body_idle: Duration,
    /// Longest time a connection may sit with no request in flight and nothing to send.
    #[serde(with = "crate::settings::units::duration")]
    pub keepalive_idle: Duration,
    /// Longest time a handler may take to produce its response head (runtime).
    #[serde(with = "crate::settings::units::duration")]
    pub handler: Duration,
    /// Longest time one send may wait for a peer that does not read (runtime).
    #[serde(with = "crate::settings::units::duration")]
    pub write: Duration,
    /// After a shutdown signal, how long in-flight requests may run before they are aborted
    /// (runtime).
    #[serde(with = "crate::settings::units::duration")]
    pub drain: Duration,
    /// While draining, how long a connection with nothing in flight must stay quiet before it
    /// is closed. A request the peer sent before the close (already on the wire when the last
    /// response left) is read and answered (refused) instead of being lost with the connection.
    #[serde(with = "crate::settings::units::duration")]
    pub drain_linger: Duration,
}

impl Timeouts {
    /// Default for [`Timeouts::params`].
    pub const DEFAULT_PARAMS: Duration = Duration::from_secs(10);
    /// Default for [`Timeouts::body_idle`].
    pub const DEFAULT_BODY_IDLE: Duration = Duration::from_secs(30);
    /// Default for [`Timeouts::keepalive_idle`].
    pub const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
    /// Default for [`Timeouts::handler`].
    pub const DEFAULT_HANDLER: Duration = Duration::from_secs(60);
    /// Default for [`Timeouts::write`].
    pub const DEFAULT_WRITE: Duration = Duration::from_secs(30);
    /// Default for [`Timeouts::drain`].
    pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
    /// Default for [`Timeouts::drain_linger`].
    pub const DEFAULT_DRAIN_LINGER: Duration = Duration::from_millis(250);
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            params: Self::DEFAULT_PARAMS,
            body_idle: Self::DEFAULT_BODY_IDLE,
            keepalive_idle: Self::DEFAULT_KEEPALIVE_IDLE,
            handler: Self::DEFAULT_HANDLER,
            write: Self::DEFAULT_WRITE,
            drain: Self::DEFAULT_DRAIN,
            drain_linger: Self::DEFAULT_DRAIN_LINGER,
        }
    }
}

/// A handle on one request of one connection. The generation makes a key of a finished
/// request useless even when its slab slot and its FastCGI request id are reused: using it
/// yields [`ApiError::UnknownRequest`], never another request's state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestKey {
    slot: u32,
    generation: u32,
}

impl RequestKey {
    /// The engine's slot for the request: small, and reused once the request is over.
    pub(crate) fn index(self) -> usize {
        self.slot as usize
    }

    /// A key made up for a test.
    #[cfg(test)]
    pub(crate) fn for_tests(slot: u32, generation: u32) -> Self {
        Self { slot, generation }
    }
}

/// Which input stream of a request a body read is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InputStream {
    /// The request body (FastCGI STDIN, the SCGI/CGI body).
    Body,
    /// The FastCGI FILTER role's DATA stream.
    FilterData,
}

/// What the FILTER role adds to a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FilterInfo {
    /// `FCGI_DATA_LENGTH`.
    pub data_length: Option<u64>,
    /// `FCGI_DATA_LAST_MOD` (seconds since the epoch).
    pub data_last_mod: Option<u64>,
}

/// A request whose head is complete, ready for the application.
#[derive(Debug)]
pub struct NewRequest {
    /// Its key for every later call.
    pub key: RequestKey,
    /// The request head built from the variables.
    pub head: RequestHead,
    /// The raw CGI variables.
    pub vars: CgiVars,
    /// The FastCGI role (RESPONDER for SCGI and CGI).
    pub role: Role,
    /// Set for the FILTER role: a DATA stream follows the body.
    pub filter: Option<FilterInfo>,
    /// The wire protocol.
    pub protocol: Protocol,
}

/// What an engine tells its driver. Poll them with [`Channel::poll_event`] after every call.
#[derive(Debug)]
pub enum Event {
    /// A request is ready for the application.
    Request(Box<NewRequest>),
    /// Body bytes, or the end of the body, can be read with [`Channel::poll_body`].
    BodyReadable(RequestKey, InputStream),
    /// A producer paused by [`Channel::poll_produce`] may produce again.
    Writable(RequestKey),
    /// The request is over on the wire: stop its handler. The key is now stale.
    Aborted(RequestKey, AbortCause),
    /// Something to count.
    Stat(Stat),
}

/// One read from a request's input stream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BodyChunk {
    /// The next bytes.
    Data(Bytes),
    /// Nothing buffered yet: an [`Event::BodyReadable`] follows when there is.
    Pending,
    /// The stream ended normally.
    End,
    /// The stream will never complete (the request was aborted, the connection lost, or the
    /// peer ended the body short of its `CONTENT_LENGTH`).
    Broken,
}

/// The application (or driver) used the engine wrongly. Peer faults never show up as this.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ApiError {
    /// The key belongs to a request that is over (or to another connection).
    #[error("unknown or finished request")]
    UnknownRequest,
    /// The response head was already sent.
    #[error("response head already sent")]
    HeadAlreadySent,
    /// Body bytes before the response head.
    #[error("response body before the response head")]
    HeadNotSent,
}

/// The peer broke the protocol so badly that the connection must close.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConnectionError {
    /// A FastCGI record header was invalid.
    #[error(transparent)]
    Record(#[from] crate::proto::fastcgi::RecordError),
    /// An SCGI header was invalid.
    #[error(transparent)]
    Scgi(#[from] crate::proto::scgi::ScgiError),
}

/// Why a request was refused before reaching the application.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rejection {
    /// The worker is over its in-flight request limit.
    Overloaded,
}

/// The interface between an engine and its driver.
///
/// Call contract (the driver is one task per connection, plus one per request that does not
/// answer on its first poll):
/// 1. Feed every read with [`Channel::handle_input`]; an `Err` means: count it, flush
///    [`Channel::take_output`] (it may hold an answer), then close. Feed EOF with
///    [`Channel::handle_read_closed`] and a failed send with [`Channel::handle_write_failed`].
/// 2. After every call, drain [`Channel::poll_event`] until `None` and act on each event.
/// 3. Read only while [`Channel::wants_read`]; when a body read makes it true again, resume.
/// 4. For each request: send the head, then body parts; before producing each part ask
///    [`Channel::poll_produce`]; on `false` wait for [`Event::Writable`]. End with
///    [`Channel::finish`] or [`Channel::abort`].
/// 5. Send what [`Channel::take_output`] returns and report it with [`Channel::handle_sent`].
/// 6. Arm a timer for [`Channel::poll_timeout`] and call [`Channel::handle_timeout`] then.
/// 7. Close when [`Channel::close_reason`] is `Some` and all output is sent.
pub trait Channel {
    /// Bytes read from the peer.
    fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), ConnectionError>;
    /// The peer half-closed its write side (we read EOF). Not an abort.
    fn handle_read_closed(&mut self, now: Instant);
    /// The peer can no longer receive: every request of the connection is aborted.
    fn handle_write_failed(&mut self, now: Instant);
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event>;
    /// Whether the driver should read from the socket now.
    fn wants_read(&self) -> bool;
    /// Reads the next piece of a request's input stream. A body with a declared
    /// `CONTENT_LENGTH` is exactly that long, whatever the peer sends (the rule is in
    /// `channel::input`'s docs).
    fn poll_body(&mut self, key: RequestKey, stream: InputStream, now: Instant) -> BodyChunk;
    /// Refuses a request that was announced by [`Event::Request`].
    fn reject(&mut self, key: RequestKey, why: Rejection, now: Instant) -> Result<(), ApiError>;
    /// Queues the response head. A 1xx status is dropped (CGI-family protocols cannot carry
    /// interim responses) and `Ok(false)` is returned; the final head must follow.
    fn send_head(
        &mut self,
        key: RequestKey,
        status: StatusCode,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<bool, ApiError>;
    /// Queues response body bytes.
    fn send_body(&mut self, key: RequestKey, data: &[u8], now: Instant) -> Result<(), ApiError>;
    /// Queues error output (FastCGI STDERR; dropped elsewhere).
    fn send_stderr(&mut self, key: RequestKey, data: &[u8]) -> Result<(), ApiError>;
    /// Whether a producer may queue more now. On `false`, [`Event::Writable`] follows later
    /// and the pause is counted as a producer stall.
    fn poll_produce(&mut self, key: RequestKey, now: Instant) -> bool;
    /// Ends a response normally. Without a head, a 500 is sent.
    fn finish(&mut self, key: RequestKey, app_status: u32, now: Instant) -> Result<(), ApiError>;
    /// Ends a request that cannot complete: with nothing sent yet, a 500 answers it; after the
    /// head, FastCGI ends that request alone and SCGI/CGI close the connection.
    fn abort(&mut self, key: RequestKey, cause: AbortCause, now: Instant) -> Result<(), ApiError>;
    /// Bytes to send, if any. They count against the high-water mark until
    /// [`Channel::handle_sent`] reports them.
    fn take_output(&mut self) -> Option<Bytes>;
    /// `n` bytes from [`Channel::take_output`] were sent.
    fn handle_sent(&mut self, n: usize, now: Instant);
    /// Bytes queued or being sent.
    fn queued_output(&self) -> usize;
    /// The earliest deadline the engine wants [`Channel::handle_timeout`] called at.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Expires whatever is due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// Stops taking new requests (server shutdown); in-flight ones go on. New requests that
    /// arrive are refused (FastCGI OVERLOADED); the connection closes once nothing is in flight
    /// and it has been quiet for [`Timeouts::drain_linger`].
    fn drain(&mut self, now: Instant);
    /// `Some` once the connection has nothing more to do: close it when output is sent.
    fn close_reason(&self) -> Option<CloseReason>;
    /// Requests in flight.
    fn in_flight(&self) -> usize;
    /// Whether `key` still names a request in flight: `false` for one that ended (aborted by
    /// the peer in the same read, say) after its [`Event::Request`] was queued.
    fn is_live(&self, key: RequestKey) -> bool;
}
