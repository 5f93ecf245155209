//! In-memory simulation of the SCGI and CGI engine with a scripted peer and virtual time.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use ringgate::channel::{
    AbortCause, BodyChunk, Channel, CloseReason, Event, InputStream, Limit, Limits, NewRequest,
    Protocol, ProtocolErrorKind, Rejection, Side, Stat, StreamEngine, Timeouts,
};
use ringgate::proto::cgi::{parse_response_head, CgiVars};
use ringgate::proto::scgi::encode_header;

struct Sim {
    engine: StreamEngine,
    now: Instant,
    events: Vec<Event>,
}

impl Sim {
    fn scgi(limits: Limits) -> Self {
        let now = Instant::now();
        Self {
            engine: StreamEngine::scgi(limits, Timeouts::default(), now),
            now,
            events: Vec::new(),
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    fn feed(&mut self, data: &[u8]) -> bool {
        let ok = self.engine.handle_input(data, self.now).is_ok();
        self.collect();
        ok
    }

    fn request(&mut self) -> Option<NewRequest> {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Event::Request(_)))?;
        match self.events.remove(i) {
            Event::Request(r) => Some(*r),
            _ => unreachable!(),
        }
    }

    fn stats(&self) -> Vec<Stat> {
        self.events
            .iter()
            .filter_map(|e| {
                if let Event::Stat(s) = e {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect()
    }

    fn output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.engine.take_output() {
            out.extend_from_slice(&b);
            self.engine.handle_sent(b.len(), self.now);
        }
        self.collect();
        out
    }
}

fn scgi_request(uri: &str, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let method: &[u8] = if body.is_empty() { b"GET" } else { b"POST" };
    encode_header(
        &mut out,
        body.len() as u64,
        &[
            (b"REQUEST_METHOD", method),
            (b"REQUEST_URI", uri.as_bytes()),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        ],
    );
    out.extend_from_slice(body);
    out
}

fn status_of(out: &[u8]) -> (u16, Vec<u8>) {
    let (head, used) = parse_response_head(out, 65536).unwrap().unwrap();
    (head.status.as_u16(), out[used..].to_vec())
}

#[test]
fn scgi_request_fed_one_byte_at_a_time() {
    let mut sim = Sim::scgi(Limits::default());
    let body = b"hello body";
    for b in scgi_request("/echo", body).iter() {
        assert!(sim.feed(&[*b]));
    }
    let req = sim.request().expect("announced");
    assert_eq!(req.protocol, Protocol::Scgi);
    assert_eq!(req.head.uri.path(), "/echo");
    let mut got = Vec::new();
    loop {
        match sim.engine.poll_body(req.key, InputStream::Body, sim.now) {
            BodyChunk::Data(d) => got.extend_from_slice(&d),
            BodyChunk::End => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, body);
    sim.engine
        .send_head(req.key, StatusCode::OK, &HeaderMap::new(), sim.now)
        .unwrap();
    sim.engine.send_body(req.key, &got, sim.now).unwrap();
    sim.engine.finish(req.key, 0, sim.now).unwrap();
    let out = sim.output();
    assert_eq!(status_of(&out), (200, body.to_vec()));
    assert_eq!(
        sim.engine.close_reason(),
        Some(CloseReason::Done),
        "SCGI closes after the response"
    );
}

#[test]
fn a_bad_scgi_header_is_a_400_and_a_close() {
    let mut sim = Sim::scgi(Limits::default());
    assert!(!sim.feed(b"12:CONTENT_LENGTH\x000\x00X"));
    assert_eq!(status_of(&sim.output()).0, 400);
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::ProtocolError));
    assert!(sim.stats().iter().any(|s| matches!(
        s,
        Stat::ProtocolError {
            protocol: Protocol::Scgi,
            ..
        }
    )));
}

#[test]
fn an_oversized_scgi_header_is_refused_before_buffering() {
    let mut sim = Sim::scgi(Limits {
        max_scgi_header_bytes: 100,
        ..Limits::default()
    });
    assert!(!sim.feed(b"101:"));
    assert_eq!(status_of(&sim.output()).0, 431);
    assert!(sim.stats().contains(&Stat::LimitHit {
        limit: Limit::MaxScgiHeaderBytes
    }));
}

#[test]
fn half_close_after_the_request_still_gets_the_full_response() {
    let mut sim = Sim::scgi(Limits::default());
    sim.feed(&scgi_request("/x", b""));
    let req = sim.request().unwrap();
    sim.engine.handle_read_closed(sim.now);
    sim.collect();
    assert!(sim.stats().contains(&Stat::HalfClose {
        protocol: Protocol::Scgi,
        side: Side::Read
    }));
    assert!(!sim.events.iter().any(|e| matches!(e, Event::Aborted(..))));
    sim.engine
        .send_head(req.key, StatusCode::OK, &HeaderMap::new(), sim.now)
        .unwrap();
    sim.engine
        .send_body(req.key, &vec![b'q'; 300_000], sim.now)
        .unwrap();
    sim.engine.finish(req.key, 0, sim.now).unwrap();
    assert_eq!(status_of(&sim.output()).1.len(), 300_000);
}

#[test]
fn eof_inside_the_body_breaks_the_body() {
    let mut sim = Sim::scgi(Limits::default());
    let full = scgi_request("/echo", b"0123456789");
    sim.feed(&full[..full.len() - 4]);
    let req = sim.request().unwrap();
    sim.engine.handle_read_closed(sim.now);
    assert_eq!(
        sim.engine.poll_body(req.key, InputStream::Body, sim.now),
        BodyChunk::Data(Bytes::from_static(b"012345"))
    );
    assert_eq!(
        sim.engine.poll_body(req.key, InputStream::Body, sim.now),
        BodyChunk::Broken
    );
}

#[test]
fn write_failure_aborts_the_request() {
    let mut sim = Sim::scgi(Limits::default());
    sim.feed(&scgi_request("/x", b""));
    let req = sim.request().unwrap();
    sim.engine.handle_write_failed(sim.now);
    sim.collect();
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Aborted(k, AbortCause::ConnectionLost) if *k == req.key)));
    assert!(sim.stats().contains(&Stat::HalfClose {
        protocol: Protocol::Scgi,
        side: Side::Write
    }));
}

#[test]
fn abort_after_the_head_closes_the_connection() {
    let mut sim = Sim::scgi(Limits::default());
    sim.feed(&scgi_request("/x", b""));
    let req = sim.request().unwrap();
    sim.engine
        .send_head(req.key, StatusCode::OK, &HeaderMap::new(), sim.now)
        .unwrap();
    sim.engine
        .abort(req.key, AbortCause::HandlerError, sim.now)
        .unwrap();
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::IoError));
}

#[test]
fn rejection_is_a_503() {
    let mut sim = Sim::scgi(Limits::default());
    sim.feed(&scgi_request("/x", b""));
    let req = sim.request().unwrap();
    sim.engine
        .reject(req.key, Rejection::Overloaded, sim.now)
        .unwrap();
    assert_eq!(status_of(&sim.output()).0, 503);
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::Overloaded));
}

#[test]
fn header_timeout_answers_408() {
    let mut sim = Sim::scgi(Limits::default());
    sim.feed(b"70:CONTENT_");
    let deadline = sim.engine.poll_timeout().unwrap();
    assert_eq!(deadline, sim.now + Timeouts::DEFAULT_PARAMS);
    sim.now = deadline + Duration::from_millis(1);
    sim.engine.handle_timeout(sim.now);
    assert_eq!(status_of(&sim.output()).0, 408);
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::Timeout));
}

#[test]
fn cgi_engine_starts_from_the_environment() {
    let mut vars = CgiVars::new();
    for (n, v) in [
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_LENGTH", "3"),
        ("SCRIPT_NAME", "/cgi"),
        ("PATH_INFO", "/p"),
        ("QUERY_STRING", "a=1"),
    ] {
        vars.push(Bytes::from(n), Bytes::from(v));
    }
    let now = Instant::now();
    let mut sim = Sim {
        engine: StreamEngine::cgi(vars, Limits::default(), Timeouts::default(), now),
        now,
        events: Vec::new(),
    };
    sim.collect();
    let req = sim.request().unwrap();
    assert_eq!(req.protocol, Protocol::Cgi);
    assert_eq!(req.head.uri.to_string(), "/cgi/p?a=1");
    sim.feed(b"abc");
    assert_eq!(
        sim.engine.poll_body(req.key, InputStream::Body, now),
        BodyChunk::Data(Bytes::from_static(b"abc"))
    );
    assert_eq!(
        sim.engine.poll_body(req.key, InputStream::Body, now),
        BodyChunk::End
    );
}

/// They are the peer's fault, not the request's: dropped and counted, and the request goes
/// on (`engine_body_length.rs` has the rest of the rule).
#[test]
fn bytes_after_the_body_are_a_protocol_error() {
    let mut sim = Sim::scgi(Limits::default());
    let mut input = scgi_request("/x", b"ab");
    input.extend_from_slice(b"extra");
    assert!(sim.feed(&input));
    assert!(sim.stats().iter().any(|s| matches!(
        s,
        Stat::ProtocolError {
            kind: ProtocolErrorKind::DataAfterBody,
            ..
        }
    )));
}
