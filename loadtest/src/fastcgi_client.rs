//! The FastCGI client: one task per connection slot group, keeping `--depth` requests in
//! flight on one connection with request ids 1..=depth (id 1 reused when the depth is 1, as
//! nginx does), or one request per connection without `FCGI_KEEP_CONN` (as lighttpd does).
//!
//! It accepts what the spec allows (any padding, STDERR, any number of STDOUT records,
//! management records) and classifies everything else as an [`ErrorKind`]: records for ids
//! not in flight, a connection that ends before `END_REQUEST`, refusals in `END_REQUEST`.
//! Requests that end the connection (half-close, disconnect, or any request without
//! keep-conn) are sent only once the connection has no other request in flight.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use ringgate::proto::fastcgi::{
    encode_record, EndRequest, ProtocolStatus, RecordDecoder, RecordHeader, RecordType, HEADER_LEN,
};
use tokio::io::Interest;

use crate::request::Behaviour;
use crate::response::ResponseReader;
use crate::schedule::Ticket;
use crate::stats::{ErrorKind, Outcome};
use crate::target::Stream;
use crate::thread::Worker;

/// Bytes reserved in the read buffer before each read.
pub const READ_CHUNK: usize = 64 * 1024;

/// One request id of a connection.
#[derive(Debug)]
enum Slot {
    /// No ticket.
    Free,
    /// A ticket not sent yet (its time has not come, or the connection must drain first).
    Waiting(Ticket),
    /// Sent, response not complete.
    Busy(InFlight),
}

#[derive(Debug)]
struct InFlight {
    ticket: Ticket,
    /// Latency origin: the intended time (open loop) or the send (closed loop).
    from: Instant,
    deadline: Instant,
    got_stdout: bool,
    stdout_done: bool,
    abort_at: Option<Instant>,
    abort_sent: bool,
    paused: bool,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Used up, or nothing left to send: close quietly.
    Done,
    /// The server closed the connection; each request in flight is classified by its state.
    Eof,
    /// Every request still in flight fails with this kind.
    Fail(ErrorKind),
    /// A request timed out (already counted); the others in flight are cancelled.
    Cancel,
}

struct Group {
    w: Rc<Worker>,
    slots: Vec<Slot>,
    readers: Vec<ResponseReader>,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

/// Runs one connection slot group until the worker's dispenser has no more tickets.
pub async fn run(w: Rc<Worker>) {
    let depth = usize::from(w.plan.depth);
    let mut g = Group {
        w: w.clone(),
        slots: (0..depth).map(|_| Slot::Free).collect(),
        readers: (0..depth)
            .map(|_| ResponseReader::new(w.plan.max_head_bytes))
            .collect(),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
    };
    loop {
        let now = Instant::now();
        for s in &mut g.slots {
            if matches!(s, Slot::Free) {
                if let Some(t) = w.dispenser.next(now) {
                    *s = Slot::Waiting(t);
                }
            }
        }
        let Some(due) = g.earliest_waiting() else {
            return;
        };
        tokio::time::sleep_until(due.into()).await;
        match tokio::time::timeout(w.plan.timeout, w.target.connect()).await {
            Ok(Ok(mut stream)) => {
                w.stats.borrow_mut().connections += 1;
                let end = g.exchange(&mut stream).await;
                g.settle(end);
            }
            _ => g.fail_earliest_waiting(ErrorKind::Connect),
        }
    }
}

impl Group {
    fn earliest_waiting(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Waiting(t) => Some(t.due()),
                _ => None,
            })
            .min()
    }

    fn fail_earliest_waiting(&mut self, kind: ErrorKind) {
        let Some(due) = self.earliest_waiting() else {
            return;
        };
        for s in &mut self.slots {
            if let Slot::Waiting(t) = s {
                if t.due() == due {
                    let t = *t;
                    *s = Slot::Free;
                    finish(&self.w, &t, Outcome::Error(kind));
                    return;
                }
            }
        }
    }

    /// Whether the request of `t` must be alone on its connection.
    fn ends_connection(&self, t: &Ticket) -> bool {
        !self.w.plan.keep_conn
            || self.w.plan.scenario.specs[t.spec]
                .behaviour
                .ends_connection()
    }

    /// Drives one connection until it ends; requests still in flight are left for
    /// [`Self::settle`].
    async fn exchange(&mut self, s: &mut Stream) -> End {
        let w = self.w.clone();
        let mut dec = RecordDecoder::new();
        let mut in_flight = 0usize;
        let mut last = false;
        let mut shut_pending = false;
        let mut paused_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if !last {
                self.issue(now, &mut in_flight, &mut last, &mut shut_pending);
            }
            if in_flight == 0 && self.wbuf.is_empty() {
                let nothing_waiting = self.slots.iter().all(|s| matches!(s, Slot::Free));
                if last || nothing_waiting {
                    return End::Done;
                }
            }
            if self.flush(s, now).is_err() {
                return End::Fail(ErrorKind::Io);
            }
            if shut_pending && self.wbuf.is_empty() {
                if s.shutdown_write().await.is_err() {
                    return End::Fail(ErrorKind::Io);
                }
                shut_pending = false;
            }

            let timer = self.next_timer(now, paused_until, last);
            let mut interest = None;
            if paused_until.is_none() {
                interest = Some(Interest::READABLE);
            }
            if !self.wbuf.is_empty() {
                interest = Some(interest.map_or(Interest::WRITABLE, |i| i | Interest::WRITABLE));
            }
            let far = now + Duration::from_secs(3600);
            let ready = tokio::select! {
                r = s.ready(interest.unwrap_or(Interest::READABLE)), if interest.is_some() => Some(r),
                () = tokio::time::sleep_until(timer.unwrap_or(far).into()), if timer.is_some() => None,
            };
            match ready {
                Some(Err(_)) => return End::Fail(ErrorKind::Io),
                Some(Ok(r))
                    if paused_until.is_none() && (r.is_readable() || r.is_read_closed()) =>
                {
                    self.rbuf.reserve(READ_CHUNK);
                    match s.try_read_buf(&mut self.rbuf) {
                        Ok(0) => return End::Eof,
                        Ok(n) => {
                            let now = Instant::now();
                            if w.measuring(now) {
                                w.stats.borrow_mut().bytes_in += n as u64;
                            }
                            if let Some(end) =
                                self.on_records(now, &mut dec, &mut in_flight, &mut paused_until)
                            {
                                return end;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return End::Fail(ErrorKind::Io),
                    }
                }
                _ => {}
            }
            let now = Instant::now();
            if paused_until.is_some_and(|t| t <= now) {
                paused_until = None;
            }
            if let Some(end) = self.on_timers(now, &mut in_flight) {
                return end;
            }
        }
    }

    /// Sends every waiting request whose time has come, unless one that must be alone on
    /// the connection is due: then nothing else goes out until the connection has drained.
    fn issue(&mut self, now: Instant, in_flight: &mut usize, last: &mut bool, shut: &mut bool) {
        let w = self.w.clone();
        for s in &mut self.slots {
            if matches!(s, Slot::Free) {
                if let Some(t) = w.dispenser.next(now) {
                    *s = Slot::Waiting(t);
                }
            }
        }
        let alone = self.slots.iter().position(|s| match s {
            Slot::Waiting(t) => t.due() <= now && self.ends_connection(t),
            _ => false,
        });
        match alone {
            Some(i) if *in_flight == 0 => {
                // A closed loop does not count the wait for the connection to drain (a
                // client artifact); the wait for a new connection does count.
                let drained = self.w.plan.keep_conn && self.w.plan.rate.is_none();
                self.send(i, now, shut, drained);
                *in_flight += 1;
                *last = true;
            }
            Some(_) => {}
            None => {
                for i in 0..self.slots.len() {
                    if matches!(&self.slots[i], Slot::Waiting(t) if t.due() <= now) {
                        self.send(i, now, shut, false);
                        *in_flight += 1;
                    }
                }
            }
        }
    }

    /// Queues the waiting request of slot `i`; `restamp` measures it from now.
    fn send(&mut self, i: usize, now: Instant, shut: &mut bool, restamp: bool) {
        let Slot::Waiting(t) = self.slots[i] else {
            return;
        };
        let w = &self.w;
        let spec = &w.plan.scenario.specs[t.spec];
        // Ids are 1..=depth and depth is a u16, so the cast cannot truncate.
        w.fcgi[t.spec].write_to(&mut self.wbuf, (i + 1) as u16);
        self.readers[i].start(spec.method.eq_ignore_ascii_case("HEAD"));
        let abort_at = match spec.behaviour {
            Behaviour::Abort { after } => Some(now + after),
            _ => None,
        };
        if spec.behaviour == Behaviour::HalfClose {
            *shut = true;
            if t.recorded {
                w.stats.borrow_mut().scenario.half_closes += 1;
            }
        }
        self.slots[i] = Slot::Busy(InFlight {
            ticket: t,
            from: if restamp {
                now
            } else {
                t.latency_origin(now, w.open_loop())
            },
            deadline: now + w.plan.timeout,
            got_stdout: false,
            stdout_done: false,
            abort_at,
            abort_sent: false,
            paused: false,
        });
    }

    fn flush(&mut self, s: &Stream, now: Instant) -> io::Result<()> {
        while !self.wbuf.is_empty() {
            match s.try_write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.advance(n);
                    if self.w.measuring(now) {
                        self.w.stats.borrow_mut().bytes_out += n as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn next_timer(
        &self,
        now: Instant,
        paused_until: Option<Instant>,
        last: bool,
    ) -> Option<Instant> {
        let mut next = paused_until;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for s in &self.slots {
            match s {
                Slot::Waiting(t) if !last && t.due() > now => at(t.due()),
                Slot::Busy(f) => {
                    at(f.deadline);
                    if let (Some(a), false) = (f.abort_at, f.abort_sent) {
                        at(a);
                    }
                }
                _ => {}
            }
        }
        next
    }

    /// Timeouts end the connection; due aborts queue `ABORT_REQUEST`.
    fn on_timers(&mut self, now: Instant, in_flight: &mut usize) -> Option<End> {
        let w = self.w.clone();
        let mut expired = false;
        for (i, s) in self.slots.iter_mut().enumerate() {
            let Slot::Busy(f) = s else { continue };
            if f.deadline <= now {
                finish(&w, &f.ticket, Outcome::Error(ErrorKind::Timeout));
                *s = Slot::Free;
                *in_flight -= 1;
                expired = true;
            } else if f.abort_at.is_some_and(|a| a <= now) && !f.abort_sent {
                f.abort_sent = true;
                // Ids are 1..=depth (a u16).
                encode_record(
                    &mut self.wbuf,
                    RecordType::ABORT_REQUEST,
                    (i + 1) as u16,
                    &[],
                );
                if f.ticket.recorded {
                    w.stats.borrow_mut().scenario.aborts_sent += 1;
                }
            }
        }
        expired.then_some(End::Cancel)
    }

    /// Handles every whole record in the read buffer.
    fn on_records(
        &mut self,
        now: Instant,
        dec: &mut RecordDecoder,
        in_flight: &mut usize,
        paused_until: &mut Option<Instant>,
    ) -> Option<End> {
        let w = self.w.clone();
        loop {
            let rec = match dec.decode(&mut self.rbuf) {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(_) => return Some(End::Fail(ErrorKind::BadRecord)),
            };
            if rec.request_id == 0 {
                match rec.record_type {
                    RecordType::GET_VALUES_RESULT | RecordType::UNKNOWN_TYPE => continue,
                    _ => return Some(End::Fail(ErrorKind::BadRecord)),
                }
            }
            let idx = usize::from(rec.request_id) - 1;
            let Some(Slot::Busy(f)) = self.slots.get_mut(idx) else {
                return Some(End::Fail(ErrorKind::WrongRequestId));
            };
            let spec = &w.plan.scenario.specs[f.ticket.spec];
            match rec.record_type {
                RecordType::STDOUT if rec.content.is_empty() => f.stdout_done = true,
                RecordType::STDOUT if f.stdout_done => {
                    return Some(End::Fail(ErrorKind::BadRecord));
                }
                RecordType::STDOUT => {
                    f.got_stdout = true;
                    self.readers[idx].feed(&rec.content, spec.expect.as_ref());
                    match spec.behaviour {
                        Behaviour::SlowReader { pause } if !f.paused => {
                            f.paused = true;
                            *paused_until = Some(now + pause);
                            if f.ticket.recorded {
                                w.stats.borrow_mut().scenario.reader_pauses += 1;
                            }
                        }
                        Behaviour::Disconnect => {
                            finish(&w, &f.ticket, Outcome::Disconnected);
                            self.slots[idx] = Slot::Free;
                            *in_flight -= 1;
                            return Some(End::Done);
                        }
                        _ => {}
                    }
                }
                RecordType::STDERR => {
                    w.stats.borrow_mut().stderr_bytes += rec.content.len() as u64;
                }
                RecordType::END_REQUEST => {
                    let Some(end) = EndRequest::parse(&rec.content) else {
                        return Some(End::Fail(ErrorKind::BadRecord));
                    };
                    let reader = &self.readers[idx];
                    let outcome = match end.protocol_status {
                        _ if f.abort_sent => Outcome::AbortEnded,
                        ProtocolStatus::REQUEST_COMPLETE => {
                            match reader.finish(spec.expect.as_ref(), false) {
                                Ok(status) => {
                                    if f.ticket.recorded {
                                        w.stats.borrow_mut().body_bytes += reader.body_len();
                                    }
                                    Outcome::Ok {
                                        status,
                                        latency: now.saturating_duration_since(f.from),
                                    }
                                }
                                Err(kind) => Outcome::Error(kind),
                            }
                        }
                        ProtocolStatus::CANT_MPX_CONN => Outcome::Error(ErrorKind::CantMpxConn),
                        ProtocolStatus::OVERLOADED => Outcome::Error(ErrorKind::Overloaded),
                        ProtocolStatus::UNKNOWN_ROLE => Outcome::Error(ErrorKind::UnknownRole),
                        _ => Outcome::Error(ErrorKind::UnknownProtocolStatus),
                    };
                    finish(&w, &f.ticket, outcome);
                    self.slots[idx] = Slot::Free;
                    *in_flight -= 1;
                }
                _ => return Some(End::Fail(ErrorKind::BadRecord)),
            }
        }
    }

    /// Counts every request the ended connection leaves in flight, and resets the buffers.
    fn settle(&mut self, end: End) {
        // A partial record left in the buffer: whose it is, when its header is complete.
        let partial = match self.rbuf.first_chunk::<HEADER_LEN>() {
            Some(h) => Some(Some(RecordHeader::parse(h).request_id)),
            None if !self.rbuf.is_empty() => Some(None),
            None => None,
        };
        for (i, s) in self.slots.iter_mut().enumerate() {
            let Slot::Busy(f) = s else { continue };
            let id = u16::try_from(i + 1).ok();
            let outcome = match end {
                End::Done | End::Cancel => Outcome::Cancelled,
                End::Fail(kind) => Outcome::Error(kind),
                End::Eof if f.abort_sent => Outcome::AbortClosed,
                End::Eof => Outcome::Error(match partial {
                    Some(Some(pid)) if Some(pid) == id => ErrorKind::ClosedMidResponse,
                    Some(None) if f.got_stdout && !f.stdout_done => ErrorKind::ClosedMidResponse,
                    _ if f.stdout_done => ErrorKind::MissingEndRequest,
                    _ if f.got_stdout => ErrorKind::TruncatedStdout,
                    _ => ErrorKind::ClosedBeforeResponse,
                }),
            };
            finish(&self.w, &f.ticket, outcome);
            *s = Slot::Free;
        }
        self.rbuf.clear();
        self.wbuf.clear();
    }
}

fn finish(w: &Worker, t: &Ticket, outcome: Outcome) {
    w.stats
        .borrow_mut()
        .finish(t.recorded, outcome, &w.progress);
}
