//! The one-request-per-connection engine shared by SCGI and CGI-on-stdio: the head arrives
//! first (an SCGI netstring, or the CGI environment given up front), then the body, of which
//! the application gets exactly `CONTENT_LENGTH` bytes (bytes after it are dropped and
//! counted once; an end of input before it is a body error: see `channel::input`); the
//! response is the raw CGI response, and the connection closes after it. An abort after the
//! head was sent closes the connection (the only way these protocols can say "incomplete").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use super::input::{release_if_empty, InputBuffer, Update};
use super::send_queue::SendQueue;
use super::{
    canned, AbortCause, ApiError, BodyChunk, Channel, CloseReason, ConnectionError, Event,
    InputStream, Limit, Limits, NewRequest, Protocol, ProtocolErrorKind, Rejection, RequestKey,
    Side, Stat, Timeouts,
};
use crate::proto::cgi::{encode_response_head, parse_request, CgiError, CgiVars};
use crate::proto::fastcgi::Role;
use crate::proto::scgi::{ScgiDecoder, ScgiError};

/// The only key a stream engine hands out (there is one request per connection).
const KEY: RequestKey = RequestKey {
    slot: 0,
    generation: 0,
};

#[derive(Debug)]
enum Phase {
    /// Waiting for the SCGI header.
    Head(ScgiDecoder),
    /// The request is with the application.
    Active {
        /// Status once the head was sent.
        status: Option<u16>,
    },
    /// The response is complete or was abandoned.
    Over,
}

/// A sans-IO SCGI or CGI connection. See [`Channel`] for the call contract.
#[derive(Debug)]
pub struct StreamEngine {
    protocol: Protocol,
    /// Shared with every connection of the worker (one copy per connection was 190 bytes).
    limits: Arc<Limits>,
    timeouts: Arc<Timeouts>,
    phase: Phase,
    input: BytesMut,
    body: InputBuffer,
    out: SendQueue,
    events: VecDeque<Event>,
    started: Instant,
    last_input: Instant,
    read_closed: bool,
    /// Whether any byte arrived from the peer.
    received: bool,
    /// While draining: when a connection that sent nothing yet gives up waiting.
    drain_deadline: Option<Instant>,
    closed: Option<CloseReason>,
    input_stalled_since: Option<Instant>,
}

impl StreamEngine {
    /// An SCGI connection accepted at `now`.
    pub fn scgi(
        limits: impl Into<Arc<Limits>>,
        timeouts: impl Into<Arc<Timeouts>>,
        now: Instant,
    ) -> Self {
        let limits = limits.into();
        let decoder = ScgiDecoder::new(limits.max_scgi_header_bytes, limits.max_params_pairs);
        Self::with_phase(
            Protocol::Scgi,
            Phase::Head(decoder),
            limits,
            timeouts.into(),
            now,
        )
    }

    /// A CGI request whose variables (the process environment) are already known; the body
    /// follows as input.
    pub fn cgi(
        vars: CgiVars,
        limits: impl Into<Arc<Limits>>,
        timeouts: impl Into<Arc<Timeouts>>,
        now: Instant,
    ) -> Self {
        let (limits, timeouts) = (limits.into(), timeouts.into());
        let mut engine = Self::with_phase(Protocol::Cgi, Phase::Over, limits, timeouts, now);
        let content_length = match vars.get_str("CONTENT_LENGTH") {
            None | Some("") => Some(0),
            Some(v) => v.parse().ok(),
        };
        match content_length {
            Some(n) => engine.start(vars, n, now),
            None => {
                engine.protocol_error(ProtocolErrorKind::BadContentLength);
                engine.answer_and_close(StatusCode::BAD_REQUEST);
            }
        }
        engine
    }

    fn with_phase(
        protocol: Protocol,
        phase: Phase,
        limits: Arc<Limits>,
        timeouts: Arc<Timeouts>,
        now: Instant,
    ) -> Self {
        Self {
            protocol,
            out: SendQueue::new(limits.send_queue_high_water),
            limits,
            timeouts,
            phase,
            input: BytesMut::new(),
            body: InputBuffer::new(),
            events: VecDeque::new(),
            started: now,
            last_input: now,
            read_closed: false,
            received: false,
            drain_deadline: None,
            closed: None,
            input_stalled_since: None,
        }
    }

    fn stat(&mut self, stat: Stat) {
        self.events.push_back(Event::Stat(stat));
    }

    fn protocol_error(&mut self, kind: ProtocolErrorKind) {
        self.stat(Stat::ProtocolError {
            protocol: self.protocol,
            kind,
        });
    }

    /// The head is complete: hand the request to the application.
    fn start(&mut self, vars: CgiVars, content_length: u64, now: Instant) {
        let head = match parse_request(&vars, self.limits.max_headers) {
            Ok(h) => h,
            Err(CgiError::TooManyHeaders { .. }) => {
                self.stat(Stat::LimitHit {
                    limit: Limit::MaxHeaders,
                });
                return self.answer_and_close(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(_) => {
                self.protocol_error(ProtocolErrorKind::BadCgiVariables);
                return self.answer_and_close(StatusCode::BAD_REQUEST);
            }
        };
        self.phase = Phase::Active { status: None };
        self.started = now;
        self.last_input = now;
        self.body = InputBuffer::with_length(content_length);
        self.stat(Stat::RequestStarted {
            protocol: self.protocol,
        });
        self.events.push_back(Event::Request(Box::new(NewRequest {
            key: KEY,
            head,
            vars,
            role: Role::RESPONDER,
            filter: None,
            protocol: self.protocol,
        })));
    }

    /// Answers without involving the application, then closes.
    fn answer_and_close(&mut self, status: StatusCode) {
        canned::write(self.out.buf(), status);
        self.phase = Phase::Over;
        self.closed = Some(CloseReason::ProtocolError);
    }

    /// Moves the bytes read after the head into the body, which keeps what its declared
    /// length allows.
    fn feed_body(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Active { .. }) {
            self.input.clear();
            return;
        }
        if self.input.is_empty() {
            return;
        }
        if self.body.is_open() {
            self.last_input = now;
        }
        let update = self.body.push(self.input.split().freeze());
        self.body_update(update);
        if self.body.buffered() >= self.limits.max_body_buffer_bytes
            && self.input_stalled_since.is_none()
        {
            self.input_stalled_since = Some(now);
        }
    }

    /// Acts on what a change to the body's stream said.
    fn body_update(&mut self, update: Update) {
        if update.wake {
            self.events
                .push_back(Event::BodyReadable(KEY, InputStream::Body));
        }
        if update.first_excess {
            self.protocol_error(ProtocolErrorKind::DataAfterBody);
        }
        if update.short {
            self.protocol_error(ProtocolErrorKind::ShortBody);
        }
    }

    fn status(&self) -> Result<Option<u16>, ApiError> {
        match self.phase {
            Phase::Active { status, .. } => Ok(status),
            _ => Err(ApiError::UnknownRequest),
        }
    }

    fn check_key(&self, key: RequestKey) -> Result<Option<u16>, ApiError> {
        if key != KEY {
            return Err(ApiError::UnknownRequest);
        }
        self.status()
    }

    /// Whether the body deadline applies: the body is still open, and either the connection
    /// is being read or bytes wait for the application, which must take them (the rule the
    /// FastCGI engine documents). A handler that never reads a body larger than the buffer
    /// would otherwise hold the connection, no longer read, forever.
    fn body_clock_runs(&self) -> bool {
        self.body.is_open() && (self.wants_read() || self.body.buffered() > 0)
    }

    /// While draining, when a connection that has sent nothing yet is closed.
    fn quiet_drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.filter(|_| !self.received)
    }

    fn end(&mut self, reason: CloseReason) {
        self.phase = Phase::Over;
        self.out.forget(KEY);
        self.closed.get_or_insert(reason);
    }
}

impl Channel for StreamEngine {
    fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), ConnectionError> {
        if self.closed.is_some() {
            return Ok(());
        }
        self.received |= !data.is_empty();
        self.input.extend_from_slice(data);
        if let Phase::Head(decoder) = &mut self.phase {
            match decoder.decode(&mut self.input) {
                Ok(None) => return Ok(()),
                Ok(Some(header)) => self.start(header.vars, header.content_length, now),
                Err(e) => {
                    match e {
                        ScgiError::TooLarge { .. } => self.stat(Stat::LimitHit {
                            limit: Limit::MaxScgiHeaderBytes,
                        }),
                        ScgiError::TooManyVars { .. } => self.stat(Stat::LimitHit {
                            limit: Limit::MaxParamsPairs,
                        }),
                        _ => self.protocol_error(ProtocolErrorKind::BadScgiHeader),
                    }
                    let status = match e {
                        ScgiError::TooLarge { .. } | ScgiError::TooManyVars { .. } => {
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
                        }
                        _ => StatusCode::BAD_REQUEST,
                    };
                    self.answer_and_close(status);
                    self.input.clear();
                    return Err(e.into());
                }
            }
        }
        self.feed_body(now);
        release_if_empty(&mut self.input);
        Ok(())
    }

    fn handle_read_closed(&mut self, _now: Instant) {
        if self.read_closed {
            return;
        }
        self.read_closed = true;
        if let Phase::Active { .. } = self.phase {
            // Only a half-close with a response still owed is one.
            self.stat(Stat::HalfClose {
                protocol: self.protocol,
                side: Side::Read,
            });
        }
        match self.phase {
            Phase::Head(_) => {
                if self.started != self.last_input || !self.input.is_empty() {
                    self.protocol_error(ProtocolErrorKind::TruncatedHeader);
                }
                self.end(CloseReason::PeerClosed);
            }
            Phase::Active { .. } => {
                // The end of the body, unless it is short of its length.
                let update = self.body.end();
                self.body_update(update);
            }
            Phase::Over => {}
        }
    }

    fn handle_write_failed(&mut self, _now: Instant) {
        if self.closed.is_none() {
            self.stat(Stat::HalfClose {
                protocol: self.protocol,
                side: Side::Write,
            });
        }
        if let Phase::Active { .. } = self.phase {
            self.events
                .push_back(Event::Aborted(KEY, AbortCause::ConnectionLost));
            self.stat(Stat::Aborted {
                protocol: self.protocol,
                cause: AbortCause::ConnectionLost,
            });
        }
        self.out.discard();
        self.end(CloseReason::IoError);
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn wants_read(&self) -> bool {
        self.closed.is_none()
            && !self.read_closed
            && self.input_stalled_since.is_none()
            && !self.out.over_high_water()
    }

    fn poll_body(&mut self, key: RequestKey, stream: InputStream, now: Instant) -> BodyChunk {
        if self.check_key(key).is_err() || stream != InputStream::Body {
            return if stream == InputStream::FilterData {
                BodyChunk::End
            } else {
                BodyChunk::Broken
            };
        }
        let chunk = self.body.pop();
        if matches!(chunk, BodyChunk::Data(_)) {
            // The application taking input is progress too (the body clock).
            self.last_input = now;
        }
        if let Some(since) = self.input_stalled_since {
            if self.body.buffered() < self.limits.max_body_buffer_bytes {
                self.input_stalled_since = None;
                self.stat(Stat::InputStall {
                    duration: now.saturating_duration_since(since),
                });
            }
        }
        chunk
    }

    fn reject(&mut self, key: RequestKey, why: Rejection, _now: Instant) -> Result<(), ApiError> {
        self.check_key(key)?;
        match why {
            // The driver counted the limit it enforced; the engine only answers.
            Rejection::Overloaded => canned::write(self.out.buf(), StatusCode::SERVICE_UNAVAILABLE),
        }
        self.end(CloseReason::Overloaded);
        Ok(())
    }

    fn send_head(
        &mut self,
        key: RequestKey,
        status: StatusCode,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<bool, ApiError> {
        if self.check_key(key)?.is_some() {
            return Err(ApiError::HeadAlreadySent);
        }
        if status.is_informational() {
            return Ok(false);
        }
        encode_response_head(self.out.buf(), status, headers);
        if let Phase::Active { status: s, .. } = &mut self.phase {
            *s = Some(status.as_u16());
        }
        let latency = now.saturating_duration_since(self.started);
        self.stat(Stat::FirstByte {
            protocol: self.protocol,
            latency,
        });
        Ok(true)
    }

    fn send_body(&mut self, key: RequestKey, data: &[u8], _now: Instant) -> Result<(), ApiError> {
        if self.check_key(key)?.is_none() {
            return Err(ApiError::HeadNotSent);
        }
        self.out.buf().extend_from_slice(data);
        Ok(())
    }

    fn send_stderr(&mut self, key: RequestKey, _data: &[u8]) -> Result<(), ApiError> {
        // SCGI and CGI responses have no error stream; the driver logs it instead.
        self.check_key(key).map(|_| ())
    }

    fn poll_produce(&mut self, key: RequestKey, now: Instant) -> bool {
        self.out.poll_produce(key, now)
    }

    fn finish(&mut self, key: RequestKey, _app_status: u32, now: Instant) -> Result<(), ApiError> {
        let status = match self.check_key(key)? {
            Some(s) => s,
            None => {
                canned::write(self.out.buf(), StatusCode::INTERNAL_SERVER_ERROR);
                500
            }
        };
        let duration = now.saturating_duration_since(self.started);
        self.stat(Stat::RequestFinished {
            protocol: self.protocol,
            status,
            duration,
        });
        self.end(CloseReason::Done);
        Ok(())
    }

    fn abort(&mut self, key: RequestKey, cause: AbortCause, _now: Instant) -> Result<(), ApiError> {
        let status = self.check_key(key)?;
        self.stat(Stat::Aborted {
            protocol: self.protocol,
            cause,
        });
        if status.is_none() {
            canned::write(self.out.buf(), canned::status_for(cause));
            self.end(CloseReason::Done);
        } else {
            // The head is out: only closing the connection tells the peer it is incomplete.
            self.end(CloseReason::IoError);
        }
        Ok(())
    }

    fn take_output(&mut self) -> Option<Bytes> {
        self.out.take()
    }

    fn handle_sent(&mut self, n: usize, now: Instant) {
        let was_over = self.out.over_high_water();
        self.out.sent(n, now, &mut self.events);
        if was_over && !self.out.over_high_water() {
            // The body clock stopped while the connection was not read for the send queue.
            self.last_input = self.last_input.max(now);
        }
    }

    fn queued_output(&self) -> usize {
        self.out.queued()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        match self.phase {
            Phase::Head(_) => {
                let params = self.started + self.timeouts.params;
                Some(
                    self.quiet_drain_deadline()
                        .map_or(params, |d| d.min(params)),
                )
            }
            Phase::Active { .. } if self.body_clock_runs() => {
                Some(self.last_input + self.timeouts.body_idle)
            }
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Head(_) if now >= self.started + self.timeouts.params => {
                self.stat(Stat::LimitHit {
                    limit: Limit::ParamsTimeout,
                });
                canned::write(self.out.buf(), StatusCode::REQUEST_TIMEOUT);
                self.end(CloseReason::Timeout);
            }
            Phase::Head(_) if self.quiet_drain_deadline().is_some_and(|d| now >= d) => {
                self.end(CloseReason::Shutdown);
            }
            Phase::Active { status, .. }
                if self.body_clock_runs() && now >= self.last_input + self.timeouts.body_idle =>
            {
                self.stat(Stat::LimitHit {
                    limit: Limit::BodyIdleTimeout,
                });
                self.stat(Stat::Aborted {
                    protocol: self.protocol,
                    cause: AbortCause::Timeout,
                });
                self.events
                    .push_back(Event::Aborted(KEY, AbortCause::Timeout));
                if status.is_none() {
                    canned::write(self.out.buf(), StatusCode::REQUEST_TIMEOUT);
                }
                self.end(CloseReason::Timeout);
            }
            _ => {}
        }
    }

    fn drain(&mut self, now: Instant) {
        // A request already under way (even its first header bytes) is served; a connection
        // that has sent nothing is closed once it stayed quiet for the linger time.
        self.drain_deadline
            .get_or_insert(now + self.timeouts.drain_linger);
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    fn in_flight(&self) -> usize {
        usize::from(matches!(self.phase, Phase::Active { .. }))
    }

    fn is_live(&self, key: RequestKey) -> bool {
        self.check_key(key).is_ok()
    }
}
