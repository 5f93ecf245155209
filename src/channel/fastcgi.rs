//! The FastCGI 1.0 connection engine: many requests in flight on one connection, each in a
//! slab slot behind a generation-checked [`RequestKey`]; management records (GET_VALUES,
//! UNKNOWN_TYPE); refusals (CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE) under the refused
//! request's own id; ABORT_REQUEST answered exactly once; KEEP_CONN honoured both ways; the
//! body-length rule on STDIN (`channel::input`: exactly `CONTENT_LENGTH` bytes reach the
//! application, an empty STDIN record before them is a body error, and without a length the
//! body runs to that record).
//!
//! Per-event work does not depend on how many requests are in flight: a wire id finds its
//! slot through a hash map, deadlines wait in a heap (`super::deadlines`), and whether the
//! connection is stalled on a full input buffer is a count of the requests at their bound.
//!
//! The body deadline, in every phase: a request whose input (STDIN, or FILTER's DATA) is still
//! open must see it move every `body_idle`: bytes arrive for it, or its application takes
//! some. The clock runs whether or not the connection is being read, with one exception: while
//! the connection is not read (another request's buffer is full, or the send queue is over its
//! mark) a request with nothing buffered is waiting for the connection, not stalling it, and
//! its clock restarts when reading resumes. So a handler that answers and never reads its
//! input times out, instead of holding the connection (which is no longer read) forever.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use slab::Slab;

use super::deadlines::{Deadlines, Entry};
use super::input::{release_if_empty, InputBuffer, Update};
use super::send_queue::SendQueue;
use super::{
    canned, AbortCause, ApiError, BodyChunk, Channel, CloseReason, ConnectionError, Event,
    FilterInfo, InputStream, Limit, Limits, NewRequest, Protocol, ProtocolErrorKind, Rejection,
    RequestKey, Side, Stat, Timeouts,
};
use crate::proto::cgi::{encode_response_head, parse_request, CgiVars};
use crate::proto::fastcgi::record::{
    encode_end_request, encode_record, encode_stream, encode_stream_end, encode_stream_with,
    encode_unknown_type, RecordHeader, HEADER_LEN,
};
use crate::proto::fastcgi::{
    encode_pair, reserve_exact, BeginRequest, ParamsDecoder, ParamsError, ProtocolStatus,
    RecordDecoder, RecordType, Role,
};

const PROTOCOL: Protocol = Protocol::FastCgi;
/// The appStatus of END_REQUEST for a request that did not complete.
const APP_STATUS_ABORTED: u32 = 1;

/// Where a request's head stands.
#[derive(Debug)]
enum Params {
    /// PARAMS records are arriving.
    Reading(ParamsDecoder),
    /// The request went to the application.
    Announced,
}

/// Where a request's response stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Output {
    /// No head sent yet.
    Head,
    /// Head sent with this status; body parts may follow.
    Body(u16),
}

#[derive(Debug)]
struct Request {
    id: u16,
    generation: u32,
    role: Role,
    keep_conn: bool,
    started: Instant,
    /// Last time this request's input moved: bytes arrived for it, or its application took
    /// some (for the body idle timeout).
    last_input: Instant,
    /// The time of this request's current entry in the engine's deadlines, if it has one.
    timer_at: Option<Instant>,
    params: Params,
    stdin: InputBuffer,
    data: InputBuffer,
    output: Output,
    /// STDERR records were sent: the stream gets its end record when the request ends.
    stderr_sent: bool,
}

impl Request {
    fn input(&mut self, stream: InputStream) -> &mut InputBuffer {
        match stream {
            InputStream::Body => &mut self.stdin,
            InputStream::FilterData => &mut self.data,
        }
    }

    fn over_buffer_limit(&self, limit: usize) -> bool {
        self.stdin.buffered() >= limit || self.data.buffered() >= limit
    }

    fn input_open(&self) -> bool {
        self.stdin.is_open() || self.data.is_open()
    }

    fn input_buffered(&self) -> bool {
        self.stdin.buffered() > 0 || self.data.buffered() > 0
    }
}

/// A sans-IO FastCGI connection. See [`Channel`] for the call contract.
#[derive(Debug)]
pub struct FastCgiEngine {
    /// Shared with every connection of the worker (one copy per connection was 190 bytes).
    limits: Arc<Limits>,
    timeouts: Arc<Timeouts>,
    decoder: RecordDecoder,
    input: BytesMut,
    requests: Slab<Request>,
    /// Wire id -> slab slot of every request in flight. Given back when none is.
    ids: HashMap<u16, u32>,
    /// Params and body deadlines of the requests in flight. Given back when none is.
    deadlines: Deadlines,
    /// Requests whose input buffer is at `max_body_buffer_bytes`: while any is, the
    /// connection is not read.
    over_limit: usize,
    /// When reading last resumed after a pause (input stall or full send queue): the body
    /// clock of a request that waited for the connection starts again there.
    resumed_at: Instant,
    next_generation: u32,
    out: SendQueue,
    events: VecDeque<Event>,
    /// A request without KEEP_CONN ended: close once the others are done.
    close_when_idle: bool,
    read_closed: bool,
    /// When the server began draining.
    draining: Option<Instant>,
    closed: Option<CloseReason>,
    idle_since: Instant,
    input_stalled_since: Option<Instant>,
    scratch: BytesMut,
}

impl FastCgiEngine {
    /// A new connection accepted at `now`.
    pub fn new(
        limits: impl Into<Arc<Limits>>,
        timeouts: impl Into<Arc<Timeouts>>,
        now: Instant,
    ) -> Self {
        let (limits, timeouts) = (limits.into(), timeouts.into());
        Self {
            out: SendQueue::new(limits.send_queue_high_water),
            limits,
            timeouts,
            decoder: RecordDecoder::new(),
            input: BytesMut::new(),
            requests: Slab::new(),
            ids: HashMap::new(),
            deadlines: Deadlines::default(),
            over_limit: 0,
            resumed_at: now,
            next_generation: 0,
            events: VecDeque::new(),
            close_when_idle: false,
            read_closed: false,
            draining: None,
            closed: None,
            idle_since: now,
            input_stalled_since: None,
            scratch: BytesMut::new(),
        }
    }

    fn stat(&mut self, stat: Stat) {
        self.events.push_back(Event::Stat(stat));
    }

    fn protocol_error(&mut self, kind: ProtocolErrorKind) {
        self.stat(Stat::ProtocolError {
            protocol: PROTOCOL,
            kind,
        });
    }

    fn slot_of(&self, id: u16) -> Option<usize> {
        self.ids.get(&id).map(|s| *s as usize)
    }

    fn key_of(&self, slot: usize) -> RequestKey {
        RequestKey {
            // Slab slots are bounded by max_requests_per_connection, far below u32::MAX.
            slot: slot as u32,
            generation: self.requests[slot].generation,
        }
    }

    fn lookup(&self, key: RequestKey) -> Result<usize, ApiError> {
        let slot = key.slot as usize;
        match self.requests.get(slot) {
            Some(r) if r.generation == key.generation => Ok(slot),
            _ => Err(ApiError::UnknownRequest),
        }
    }

    fn end_request(&mut self, id: u16, app_status: u32, status: ProtocolStatus) {
        encode_end_request(self.out.buf(), id, app_status, status);
    }

    fn refuse(&mut self, id: u16, status: ProtocolStatus) {
        self.end_request(id, 0, status);
        self.stat(Stat::Refused { status });
    }

    /// Removes a request whose END_REQUEST has been queued.
    fn remove(&mut self, slot: usize, now: Instant) {
        let key = self.key_of(slot);
        let req = self.requests.remove(slot);
        self.ids.remove(&req.id);
        self.out.forget(key);
        if !req.keep_conn {
            self.close_when_idle = true;
        }
        if self.requests.is_empty() {
            self.idle_since = now;
            // A connection between requests holds no tables.
            self.ids = HashMap::new();
            self.deadlines.clear();
        }
        // Removing a request can end a stall, never start one.
        if req.over_buffer_limit(self.limits.max_body_buffer_bytes) {
            self.over_limit -= 1;
            self.update_input_stall(now);
        }
    }

    /// Arms `slot`'s deadline at `at`, unless its current entry comes no later.
    fn arm(&mut self, slot: usize, at: Instant) {
        let req = &mut self.requests[slot];
        if req.timer_at.is_some_and(|t| t <= at) {
            return;
        }
        req.timer_at = Some(at);
        let entry = Entry {
            at,
            slot: slot as u32,
            generation: req.generation,
        };
        self.deadlines.push(entry);
        let requests = &self.requests;
        self.deadlines.compact(requests.len(), |e| {
            requests
                .get(e.slot as usize)
                .is_some_and(|r| r.generation == e.generation && r.timer_at == Some(e.at))
        });
    }

    /// When `req` expires, as far as can be told at `now`: `None` when it never does (its
    /// head is complete and its input ended). A request waiting for the connection gets
    /// `now + body_idle`, a lower bound of wherever its clock restarts.
    fn due(&self, req: &Request, now: Instant) -> Option<Instant> {
        match req.params {
            Params::Reading(_) => Some(req.started + self.timeouts.params),
            Params::Announced if !req.input_open() => None,
            Params::Announced => {
                let charged = self.wants_read() || req.input_buffered();
                let from = if charged {
                    req.last_input.max(self.resumed_at)
                } else {
                    now
                };
                Some(from + self.timeouts.body_idle)
            }
        }
    }

    /// Answers a request that never reached the application with a canned response.
    fn answer_unannounced(&mut self, slot: usize, status: StatusCode, now: Instant) {
        let id = self.requests[slot].id;
        self.scratch.clear();
        canned::write(&mut self.scratch, status);
        encode_stream(self.out.buf(), RecordType::STDOUT, id, &self.scratch);
        encode_stream_end(self.out.buf(), RecordType::STDOUT, id);
        self.end_request(id, APP_STATUS_ABORTED, ProtocolStatus::REQUEST_COMPLETE);
        self.remove(slot, now);
    }

    /// Ends a request on the wire for `cause` and tells the driver to stop its handler.
    /// Without a response head yet, `answer` is sent (except to a peer that aborted).
    fn abort_slot(&mut self, slot: usize, cause: AbortCause, answer: StatusCode, now: Instant) {
        let key = self.key_of(slot);
        let req = &self.requests[slot];
        let (id, announced, output) = (req.id, matches!(req.params, Params::Announced), req.output);
        if announced {
            self.events.push_back(Event::Aborted(key, cause));
        }
        self.stat(Stat::Aborted {
            protocol: PROTOCOL,
            cause,
        });
        if output == Output::Head && cause != AbortCause::PeerAbort {
            // Nothing sent yet: answer with an error status rather than an empty response.
            self.scratch.clear();
            canned::write(&mut self.scratch, answer);
            encode_stream(self.out.buf(), RecordType::STDOUT, id, &self.scratch);
        }
        encode_stream_end(self.out.buf(), RecordType::STDOUT, id);
        self.end_request(id, APP_STATUS_ABORTED, ProtocolStatus::REQUEST_COMPLETE);
        self.remove(slot, now);
    }

    /// Takes the record at the front of `input` (whole: [`RecordDecoder::peek`] said so) off
    /// it and handles it. The content of a request's PARAMS, STDIN or DATA record is kept (as
    /// the variables' block, or as input waiting for the application): it is split off as a
    /// shared [`Bytes`] (PARAMS unless that would keep a much larger buffer alive: see
    /// [`RecordDecoder::take_block`]). Every other record is read in place.
    fn handle_record(&mut self, input: &mut BytesMut, header: RecordHeader, now: Instant) {
        let (id, record_type) = (header.request_id, header.record_type);
        let kept = matches!(
            record_type,
            RecordType::PARAMS | RecordType::STDIN | RecordType::DATA
        );
        if kept && id != 0 {
            return match record_type {
                RecordType::PARAMS => {
                    let content = self.decoder.take_block(input, &header);
                    self.handle_params(id, content, now)
                }
                RecordType::STDIN => {
                    let content = self.decoder.take(input, &header);
                    self.handle_stream(id, content, InputStream::Body, now)
                }
                _ => {
                    let content = self.decoder.take(input, &header);
                    self.handle_stream(id, content, InputStream::FilterData, now)
                }
            };
        }
        let content = &input[HEADER_LEN..][..usize::from(header.content_length)];
        if id == 0 {
            self.handle_management(record_type, content);
        } else {
            match record_type {
                RecordType::BEGIN_REQUEST => self.handle_begin(id, content, now),
                RecordType::ABORT_REQUEST => {
                    // An abort for an id not in flight (already ended) is ignored.
                    if let Some(slot) = self.slot_of(id) {
                        self.abort_slot(slot, AbortCause::PeerAbort, StatusCode::OK, now);
                    }
                }
                _ => self.protocol_error(ProtocolErrorKind::UnexpectedRecordType),
            }
        }
        self.decoder.consume(input, &header);
    }

    fn handle_management(&mut self, record_type: RecordType, content: &[u8]) {
        if record_type != RecordType::GET_VALUES {
            encode_unknown_type(self.out.buf(), record_type);
            self.stat(Stat::UnknownTypeSent);
            return;
        }
        let query = match ParamsDecoder::decode_all(
            content,
            self.limits.max_params_bytes,
            self.limits.max_params_pairs,
        ) {
            Ok(q) => q,
            Err(_) => {
                self.protocol_error(ProtocolErrorKind::BadGetValues);
                CgiVars::new()
            }
        };
        self.scratch.clear();
        for (name, _) in query.iter() {
            let value = match name {
                b"FCGI_MAX_CONNS" => self.limits.max_connections,
                b"FCGI_MAX_REQS" => self.max_reqs(),
                b"FCGI_MPXS_CONNS" => usize::from(self.limits.mpxs_conns),
                _ => continue,
            };
            encode_pair(&mut self.scratch, name, value.to_string().as_bytes());
        }
        let body = self.scratch.split().freeze();
        encode_record(self.out.buf(), RecordType::GET_VALUES_RESULT, 0, &body);
        self.stat(Stat::GetValuesServed);
    }

    fn max_reqs(&self) -> usize {
        if self.limits.mpxs_conns {
            self.limits.max_requests_per_connection
        } else {
            1
        }
    }

    fn handle_begin(&mut self, id: u16, content: &[u8], now: Instant) {
        let Some(begin) = BeginRequest::parse(content) else {
            return self.protocol_error(ProtocolErrorKind::ShortBeginRequest);
        };
        if self.slot_of(id).is_some() {
            // The spec says to ignore a BEGIN_REQUEST for an id already in flight.
            return self.protocol_error(ProtocolErrorKind::DuplicateRequestId);
        }
        if !begin.role.is_known() {
            return self.refuse(id, ProtocolStatus::UNKNOWN_ROLE);
        }
        if !self.limits.mpxs_conns && !self.requests.is_empty() {
            return self.refuse(id, ProtocolStatus::CANT_MPX_CONN);
        }
        if self.draining.is_some() || self.close_when_idle {
            return self.refuse(id, ProtocolStatus::OVERLOADED);
        }
        if self.requests.len() >= self.limits.max_requests_per_connection {
            self.stat(Stat::LimitHit {
                limit: Limit::MaxRequestsPerConnection,
            });
            return self.refuse(id, ProtocolStatus::OVERLOADED);
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let filter = begin.role == Role::FILTER;
        if self.requests.capacity() == 0 {
            // Room for one: what a connection without multiplexing ever needs, and what a
            // keep-alive connection keeps while idle (four, a `Vec`'s first growth, were 1.2
            // KiB).
            self.requests.reserve_exact(1);
        }
        let slot = self.requests.insert(Request {
            id,
            generation,
            role: begin.role,
            keep_conn: begin.keep_conn(),
            started: now,
            last_input: now,
            timer_at: None,
            params: Params::Reading(ParamsDecoder::new(
                self.limits.max_params_bytes,
                self.limits.max_params_pairs,
            )),
            stdin: InputBuffer::new(),
            data: if filter {
                InputBuffer::new()
            } else {
                InputBuffer::ended()
            },
            output: Output::Head,
            stderr_sent: false,
        });
        self.ids.insert(id, slot as u32);
        self.arm(slot, now + self.timeouts.params);
        self.stat(Stat::ConnectionConcurrency {
            in_flight: self.requests.len(),
        });
    }

    fn handle_params(&mut self, id: u16, content: Bytes, now: Instant) {
        let Some(slot) = self.slot_of(id) else {
            return; // Records for an id not in flight are ignored (spec).
        };
        let req = &mut self.requests[slot];
        req.last_input = now;
        let Params::Reading(decoder) = &mut req.params else {
            return self.protocol_error(ProtocolErrorKind::ParamsAfterEnd);
        };
        if !content.is_empty() {
            if let Err(e) = decoder.push_shared(content) {
                return self.params_failed(slot, e, now);
            }
            return;
        }
        let Params::Reading(decoder) = std::mem::replace(&mut req.params, Params::Announced) else {
            unreachable!("matched Reading just above");
        };
        let vars = match decoder.finish() {
            Ok(v) => v,
            Err(e) => return self.params_failed(slot, e, now),
        };
        let head = match parse_request(&vars, self.limits.max_headers) {
            Ok(h) => h,
            Err(crate::proto::cgi::CgiError::TooManyHeaders { .. }) => {
                self.stat(Stat::LimitHit {
                    limit: Limit::MaxHeaders,
                });
                return self.answer_unannounced(
                    slot,
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    now,
                );
            }
            Err(_) => {
                self.protocol_error(ProtocolErrorKind::BadCgiVariables);
                return self.answer_unannounced(slot, StatusCode::BAD_REQUEST, now);
            }
        };
        let filter = (req.role == Role::FILTER).then(|| FilterInfo {
            data_length: vars
                .get_str("FCGI_DATA_LENGTH")
                .and_then(|v| v.parse().ok()),
            data_last_mod: vars
                .get_str("FCGI_DATA_LAST_MOD")
                .and_then(|v| v.parse().ok()),
        });
        let role = req.role;
        if let Some(length) = declared_length(&vars, &head) {
            let update = req.stdin.declare(length);
            // Nobody reads the body before the request is announced: no reader to wake.
            self.input_update(update);
        }
        let key = self.key_of(slot);
        // From now on the body deadline applies (which may come before the params one).
        if let Some(at) = self.due(&self.requests[slot], now) {
            self.arm(slot, at);
        }
        self.stat(Stat::RequestStarted { protocol: PROTOCOL });
        self.events.push_back(Event::Request(Box::new(NewRequest {
            key,
            head,
            vars,
            role,
            filter,
            protocol: PROTOCOL,
        })));
    }

    fn params_failed(&mut self, slot: usize, error: ParamsError, now: Instant) {
        match error {
            ParamsError::TooLarge { .. } => self.stat(Stat::LimitHit {
                limit: Limit::MaxParamsBytes,
            }),
            ParamsError::TooManyPairs { .. } => self.stat(Stat::LimitHit {
                limit: Limit::MaxParamsPairs,
            }),
            ParamsError::Truncated => self.protocol_error(ProtocolErrorKind::TruncatedParams),
        }
        let status = match error {
            ParamsError::Truncated => StatusCode::BAD_REQUEST,
            _ => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        };
        self.answer_unannounced(slot, status, now);
    }

    fn handle_stream(&mut self, id: u16, content: Bytes, stream: InputStream, now: Instant) {
        let Some(slot) = self.slot_of(id) else {
            return;
        };
        let key = self.key_of(slot);
        let limit = self.limits.max_body_buffer_bytes;
        let req = &mut self.requests[slot];
        req.last_input = now;
        let was_over = req.over_buffer_limit(limit);
        let buffer = req.input(stream);
        if !buffer.wire_open() {
            return self.protocol_error(ProtocolErrorKind::InputAfterEnd);
        }
        let update = if content.is_empty() {
            buffer.end()
        } else {
            buffer.push(content)
        };
        if update.wake {
            self.events.push_back(Event::BodyReadable(key, stream));
        }
        self.input_update(update);
        // More input can start a stall (this request's buffer reached the limit), never end
        // one.
        if !was_over && self.requests[slot].over_buffer_limit(limit) {
            self.over_limit += 1;
            self.update_input_stall(now);
        }
    }

    /// Counts what the body-length rule found in a request's input.
    fn input_update(&mut self, update: Update) {
        if update.first_excess {
            self.protocol_error(ProtocolErrorKind::DataAfterBody);
        }
        if update.short {
            self.protocol_error(ProtocolErrorKind::ShortBody);
        }
    }

    /// Starts or ends the input-stall interval as requests reach their buffer bound or leave
    /// it (`over_limit`). Reading resumes when it ends.
    fn update_input_stall(&mut self, now: Instant) {
        match (self.over_limit > 0, self.input_stalled_since) {
            (true, None) => self.input_stalled_since = Some(now),
            (false, Some(since)) => {
                self.input_stalled_since = None;
                self.resumed_at = now;
                self.stat(Stat::InputStall {
                    duration: now.saturating_duration_since(since),
                });
            }
            _ => {}
        }
    }

    /// Decodes and handles buffered records while the send queue is under its mark. Records
    /// left over wait in `input` (at most one read's worth: `wants_read` is false meanwhile)
    /// until [`Channel::handle_sent`] brings the queue back under the mark, so whatever the
    /// peer asks for, replies the engine writes itself included, stays bounded.
    fn process_input(&mut self, now: Instant) -> Result<(), ConnectionError> {
        // Out of `self` while records are handled, which read their content in place.
        let mut input = std::mem::take(&mut self.input);
        let mut result = Ok(());
        while !self.out.over_high_water() && self.closed.is_none() {
            match self.decoder.peek(&mut input) {
                Ok(Some(header)) => self.handle_record(&mut input, header, now),
                Ok(None) => {
                    release_if_empty(&mut input);
                    break;
                }
                Err(e) => {
                    self.protocol_error(ProtocolErrorKind::BadRecord);
                    self.closed = Some(CloseReason::ProtocolError);
                    input = BytesMut::new();
                    result = Err(e.into());
                    break;
                }
            }
        }
        self.input = input;
        result
    }

    /// Nothing in flight and nothing to send.
    fn idle(&self) -> bool {
        self.requests.is_empty() && self.out.queued() == 0
    }

    /// While draining and idle: when the connection may close (quiet for the linger time
    /// since the drain began or since it last sent something, whichever is later).
    fn drain_deadline(&self) -> Option<Instant> {
        let since = self.draining?;
        self.idle()
            .then(|| since.max(self.idle_since) + self.timeouts.drain_linger)
    }

    fn slot_with_output(&self, key: RequestKey) -> Result<(usize, Output), ApiError> {
        let slot = self.lookup(key)?;
        Ok((slot, self.requests[slot].output))
    }

    fn first_byte(&mut self, slot: usize, status: StatusCode, now: Instant) {
        let req = &mut self.requests[slot];
        req.output = Output::Body(status.as_u16());
        let latency = now.saturating_duration_since(req.started);
        self.stat(Stat::FirstByte {
            protocol: PROTOCOL,
            latency,
        });
    }
}

impl Channel for FastCgiEngine {
    fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), ConnectionError> {
        if self.closed.is_some() {
            return Ok(());
        }
        // An empty buffer gets an allocation of exactly `data`'s size from `extend_from_slice`;
        // one that holds part of a record grows exactly too, not to twice its size.
        if !self.input.is_empty() {
            reserve_exact(&mut self.input, data.len());
        }
        self.input.extend_from_slice(data);
        self.process_input(now)
    }

    fn handle_read_closed(&mut self, now: Instant) {
        if self.read_closed {
            return;
        }
        self.read_closed = true;
        self.stat(Stat::HalfClose {
            protocol: PROTOCOL,
            side: Side::Read,
        });
        // Requests whose head is incomplete can never start; complete ones still get their
        // full response, only their unfinished input is broken off.
        let slots: Vec<usize> = self.requests.iter().map(|(s, _)| s).collect();
        for slot in slots {
            let key = self.key_of(slot);
            let req = &mut self.requests[slot];
            if let Params::Reading(_) = req.params {
                let id = req.id;
                self.end_request(id, APP_STATUS_ABORTED, ProtocolStatus::REQUEST_COMPLETE);
                self.stat(Stat::Aborted {
                    protocol: PROTOCOL,
                    cause: AbortCause::ConnectionLost,
                });
                self.remove(slot, now);
                continue;
            }
            for stream in [InputStream::Body, InputStream::FilterData] {
                if req.input(stream).break_off() {
                    self.events.push_back(Event::BodyReadable(key, stream));
                }
            }
        }
    }

    fn handle_write_failed(&mut self, now: Instant) {
        if self.closed.is_none() {
            self.stat(Stat::HalfClose {
                protocol: PROTOCOL,
                side: Side::Write,
            });
        }
        let slots: Vec<usize> = self.requests.iter().map(|(s, _)| s).collect();
        for slot in slots {
            let key = self.key_of(slot);
            if matches!(self.requests[slot].params, Params::Announced) {
                self.events
                    .push_back(Event::Aborted(key, AbortCause::ConnectionLost));
            }
            self.stat(Stat::Aborted {
                protocol: PROTOCOL,
                cause: AbortCause::ConnectionLost,
            });
            self.remove(slot, now);
        }
        self.out.discard();
        self.closed.get_or_insert(CloseReason::IoError);
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
        let Ok(slot) = self.lookup(key) else {
            return BodyChunk::Broken;
        };
        let limit = self.limits.max_body_buffer_bytes;
        let req = &mut self.requests[slot];
        let was_over = req.over_buffer_limit(limit);
        let chunk = req.input(stream).pop();
        if matches!(chunk, BodyChunk::Data(_)) {
            // The application taking input is progress too (the body clock).
            req.last_input = now;
            if was_over && !req.over_buffer_limit(limit) {
                self.over_limit -= 1;
                self.update_input_stall(now);
            }
        }
        chunk
    }

    fn reject(&mut self, key: RequestKey, why: Rejection, now: Instant) -> Result<(), ApiError> {
        let slot = self.lookup(key)?;
        let id = self.requests[slot].id;
        match why {
            Rejection::Overloaded => self.refuse(id, ProtocolStatus::OVERLOADED),
        }
        self.remove(slot, now);
        Ok(())
    }

    fn send_head(
        &mut self,
        key: RequestKey,
        status: StatusCode,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<bool, ApiError> {
        let (slot, output) = self.slot_with_output(key)?;
        if output != Output::Head {
            return Err(ApiError::HeadAlreadySent);
        }
        if status.is_informational() {
            return Ok(false);
        }
        let id = self.requests[slot].id;
        encode_stream_with(self.out.buf(), RecordType::STDOUT, id, |out| {
            encode_response_head(out, status, headers)
        });
        self.first_byte(slot, status, now);
        Ok(true)
    }

    fn send_body(&mut self, key: RequestKey, data: &[u8], _now: Instant) -> Result<(), ApiError> {
        let (slot, output) = self.slot_with_output(key)?;
        if output == Output::Head {
            return Err(ApiError::HeadNotSent);
        }
        let id = self.requests[slot].id;
        encode_stream(self.out.buf(), RecordType::STDOUT, id, data);
        Ok(())
    }

    fn send_stderr(&mut self, key: RequestKey, data: &[u8]) -> Result<(), ApiError> {
        let slot = self.lookup(key)?;
        if data.is_empty() {
            return Ok(()); // An empty record would end the stream.
        }
        let req = &mut self.requests[slot];
        req.stderr_sent = true;
        encode_stream(self.out.buf(), RecordType::STDERR, req.id, data);
        Ok(())
    }

    fn poll_produce(&mut self, key: RequestKey, now: Instant) -> bool {
        self.out.poll_produce(key, now)
    }

    fn finish(&mut self, key: RequestKey, app_status: u32, now: Instant) -> Result<(), ApiError> {
        let (slot, output) = self.slot_with_output(key)?;
        let id = self.requests[slot].id;
        let status = match output {
            Output::Body(status) => status,
            Output::Head => {
                // The handler gave no final head (only a 1xx, say): that is its error.
                self.scratch.clear();
                canned::write(&mut self.scratch, StatusCode::INTERNAL_SERVER_ERROR);
                encode_stream(self.out.buf(), RecordType::STDOUT, id, &self.scratch);
                self.first_byte(slot, StatusCode::INTERNAL_SERVER_ERROR, now);
                500
            }
        };
        encode_stream_end(self.out.buf(), RecordType::STDOUT, id);
        if self.requests[slot].stderr_sent {
            encode_stream_end(self.out.buf(), RecordType::STDERR, id);
        }
        self.end_request(id, app_status, ProtocolStatus::REQUEST_COMPLETE);
        let duration = now.saturating_duration_since(self.requests[slot].started);
        self.stat(Stat::RequestFinished {
            protocol: PROTOCOL,
            status,
            duration,
        });
        self.remove(slot, now);
        Ok(())
    }

    fn abort(&mut self, key: RequestKey, cause: AbortCause, now: Instant) -> Result<(), ApiError> {
        let slot = self.lookup(key)?;
        // The driver asked for it: its own handler needs no Aborted event back.
        self.abort_slot(slot, cause, canned::status_for(cause), now);
        self.events
            .retain(|e| !matches!(e, Event::Aborted(k, _) if *k == key));
        Ok(())
    }

    fn take_output(&mut self) -> Option<Bytes> {
        self.out.take()
    }

    fn handle_sent(&mut self, n: usize, now: Instant) {
        let was_over = self.out.over_high_water();
        self.out.sent(n, now, &mut self.events);
        if was_over && !self.out.over_high_water() {
            self.resumed_at = now;
        }
        if !self.input.is_empty() {
            // Records held back while the queue was full; a bad one closes the connection
            // here just as it would have on arrival.
            let _ = self.process_input(now);
        }
        if self.idle() {
            self.idle_since = now;
        }
    }

    fn queued_output(&self) -> usize {
        self.out.queued()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let mut earliest = self.deadlines.next();
        let mut consider = |t: Instant| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        if self.idle() {
            consider(self.idle_since + self.timeouts.keepalive_idle);
        }
        if let Some(deadline) = self.drain_deadline() {
            consider(deadline);
        }
        earliest
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        while let Some(entry) = self.deadlines.pop_due(now) {
            let slot = entry.slot as usize;
            let current = self
                .requests
                .get(slot)
                .is_some_and(|r| r.generation == entry.generation && r.timer_at == Some(entry.at));
            if !current {
                continue; // The request ended, or was re-armed earlier.
            }
            self.requests[slot].timer_at = None;
            match self.due(&self.requests[slot], now) {
                None => {}
                Some(at) if at > now => self.arm(slot, at),
                Some(_) if matches!(self.requests[slot].params, Params::Announced) => {
                    self.stat(Stat::LimitHit {
                        limit: Limit::BodyIdleTimeout,
                    });
                    self.abort_slot(slot, AbortCause::Timeout, StatusCode::REQUEST_TIMEOUT, now);
                }
                Some(_) => {
                    self.stat(Stat::LimitHit {
                        limit: Limit::ParamsTimeout,
                    });
                    self.stat(Stat::Aborted {
                        protocol: PROTOCOL,
                        cause: AbortCause::Timeout,
                    });
                    self.answer_unannounced(slot, StatusCode::REQUEST_TIMEOUT, now);
                }
            }
        }
        if self.idle() && now >= self.idle_since + self.timeouts.keepalive_idle {
            self.closed = Some(CloseReason::Timeout);
        } else if self.drain_deadline().is_some_and(|d| now >= d) {
            self.closed = Some(CloseReason::Shutdown);
        }
    }

    fn drain(&mut self, now: Instant) {
        self.draining.get_or_insert(now);
    }

    fn close_reason(&self) -> Option<CloseReason> {
        if let Some(reason) = self.closed {
            return Some(reason);
        }
        if !self.requests.is_empty() {
            return None;
        }
        if self.close_when_idle {
            Some(CloseReason::Done)
        } else if self.read_closed {
            Some(CloseReason::PeerClosed)
        } else {
            None
        }
    }

    fn in_flight(&self) -> usize {
        self.requests.len()
    }

    fn is_live(&self, key: RequestKey) -> bool {
        self.lookup(key).is_ok()
    }
}

/// The STDIN length the body-length rule holds a request to: its `CONTENT_LENGTH`, or `None`
/// (the body runs to the empty STDIN record) when there is none or it is empty, as nginx sends
/// it for a chunked body it streams (`fastcgi_request_buffering off`).
fn declared_length(vars: &CgiVars, head: &crate::proto::cgi::RequestHead) -> Option<u64> {
    match vars.get("CONTENT_LENGTH") {
        None | Some([]) => None,
        Some(_) => head.content_length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::fastcgi::{encode_request, FLAG_KEEP_CONN};

    /// A keep-alive connection idle between requests keeps room for one request, not the four
    /// of a `Vec`'s first growth (1.2 KiB per idle connection).
    #[test]
    fn an_idle_connection_keeps_room_for_one_request() {
        let now = Instant::now();
        let mut engine = FastCgiEngine::new(Limits::default(), Timeouts::default(), now);
        for _ in 0..3 {
            let mut wire = BytesMut::new();
            let params = [(&b"REQUEST_METHOD"[..], &b"GET"[..])].into_iter();
            encode_request(&mut wire, 1, Role::RESPONDER, FLAG_KEEP_CONN, params, b"");
            engine.handle_input(&wire, now).unwrap();
            let key = std::iter::from_fn(|| engine.poll_event())
                .find_map(|e| match e {
                    Event::Request(r) => Some(r.key),
                    _ => None,
                })
                .expect("request announced");
            engine
                .send_head(key, StatusCode::OK, &HeaderMap::new(), now)
                .unwrap();
            engine.finish(key, 0, now).unwrap();
            while engine.poll_event().is_some() {}
            let out = engine.take_output().unwrap();
            engine.handle_sent(out.len(), now);
        }
        assert_eq!(engine.requests.capacity(), 1);
    }
}
