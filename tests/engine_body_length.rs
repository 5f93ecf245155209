//! The body-length rule (`channel::input`), through both engines in memory: the application
//! reads exactly `CONTENT_LENGTH` bytes, bytes beyond it are dropped and counted once per
//! request (`data_after_body`), a stream that ends short of it is a body error (counted as
//! `short_body`), and FastCGI without a length runs to the empty STDIN record.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ringgate::channel::{
    BodyChunk, Channel, Event, FastCgiEngine, InputStream, Limits, Protocol, RequestKey, Stat,
    StreamEngine, Timeouts,
};
use ringgate::proto::cgi::CgiVars;
use ringgate::proto::fastcgi::record::{encode_stream, encode_stream_end};
use ringgate::proto::fastcgi::{encode_pair, BeginRequest, RecordType, Role, FLAG_KEEP_CONN};
use ringgate::proto::scgi::encode_header;

/// An engine under test with the events it gave so far.
struct Sim<E> {
    engine: E,
    now: Instant,
    events: Vec<Event>,
}

impl<E: Channel> Sim<E> {
    fn new(engine: E, now: Instant) -> Self {
        Self {
            engine,
            now,
            events: Vec::new(),
        }
    }

    /// Feeds `bytes`; whether the engine took them without a connection error.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        let ok = self.engine.handle_input(bytes, self.now).is_ok();
        self.collect();
        ok
    }

    fn collect(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    fn key(&self) -> RequestKey {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Request(r) => Some(r.key),
                _ => None,
            })
            .expect("a request was announced")
    }

    /// Everything the application can read now, and how the read ended.
    fn read_body(&mut self, key: RequestKey) -> (Vec<u8>, BodyChunk) {
        let mut body = Vec::new();
        loop {
            match self.engine.poll_body(key, InputStream::Body, self.now) {
                BodyChunk::Data(d) => body.extend_from_slice(&d),
                other => {
                    self.collect();
                    return (body, other);
                }
            }
        }
    }

    /// How many protocol errors of `kind` (its metric label) were counted.
    fn protocol_errors(&self, protocol: Protocol, kind: &str) -> usize {
        self.events
            .iter()
            .filter(|e| {
                matches!(e, Event::Stat(Stat::ProtocolError { protocol: p, kind: k })
                    if *p == protocol && k.as_str() == kind)
            })
            .count()
    }
}

fn fastcgi() -> Sim<FastCgiEngine> {
    let now = Instant::now();
    Sim::new(
        FastCgiEngine::new(Limits::default(), Timeouts::default(), now),
        now,
    )
}

/// BEGIN_REQUEST and the params of a POST with this `CONTENT_LENGTH` (`None`: not sent).
fn fastcgi_head(id: u16, content_length: Option<&str>) -> BytesMut {
    let mut out = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, id);
    let mut p = BytesMut::new();
    encode_pair(&mut p, b"REQUEST_METHOD", b"POST");
    encode_pair(&mut p, b"REQUEST_URI", b"/echo");
    encode_pair(&mut p, b"SERVER_PROTOCOL", b"HTTP/1.1");
    if let Some(length) = content_length {
        encode_pair(&mut p, b"CONTENT_LENGTH", length.as_bytes());
    }
    encode_stream(&mut out, RecordType::PARAMS, id, &p);
    encode_stream_end(&mut out, RecordType::PARAMS, id);
    out
}

fn stdin(id: u16, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_stream(&mut out, RecordType::STDIN, id, data);
    out
}

fn stdin_end(id: u16) -> BytesMut {
    let mut out = BytesMut::new();
    encode_stream_end(&mut out, RecordType::STDIN, id);
    out
}

#[test]
fn fastcgi_stdin_past_content_length_is_dropped_and_counted_once() {
    let mut sim = fastcgi();
    let mut wire = fastcgi_head(1, Some("5"));
    for _ in 0..3 {
        wire.extend_from_slice(&stdin(1, b"0123456789"));
    }
    assert!(sim.feed(&wire));
    // More in a later read, and then the stream's end: neither is an error of its own.
    assert!(sim.feed(&stdin(1, &[b'x'; 70_000])));
    assert!(sim.feed(&stdin_end(1)));
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"01234".to_vec(), BodyChunk::End));
    assert_eq!(sim.protocol_errors(Protocol::FastCgi, "data_after_body"), 1);
    assert_eq!(sim.protocol_errors(Protocol::FastCgi, "input_after_end"), 0);
}

#[test]
fn fastcgi_body_ends_for_the_application_at_content_length() {
    let mut sim = fastcgi();
    let mut wire = fastcgi_head(1, Some("3"));
    wire.extend_from_slice(&stdin(1, b"abc"));
    assert!(sim.feed(&wire));
    // The empty STDIN record has not come: the body is complete all the same.
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"abc".to_vec(), BodyChunk::End));
    assert!(sim.feed(&stdin_end(1)));
    assert_eq!(sim.protocol_errors(Protocol::FastCgi, "data_after_body"), 0);
}

#[test]
fn fastcgi_stdin_that_ends_short_of_content_length_is_a_body_error() {
    let mut sim = fastcgi();
    let mut wire = fastcgi_head(1, Some("100"));
    wire.extend_from_slice(&stdin(1, b"hello"));
    wire.extend_from_slice(&stdin_end(1));
    assert!(sim.feed(&wire));
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"hello".to_vec(), BodyChunk::Broken));
    assert_eq!(sim.protocol_errors(Protocol::FastCgi, "short_body"), 1);
}

#[test]
fn fastcgi_without_content_length_runs_to_the_end_of_stdin() {
    for length in [None, Some("")] {
        let mut sim = fastcgi();
        let mut wire = fastcgi_head(1, length);
        wire.extend_from_slice(&stdin(1, b"abc"));
        wire.extend_from_slice(&stdin(1, b"def"));
        assert!(sim.feed(&wire));
        let key = sim.key();
        assert_eq!(sim.read_body(key), (b"abcdef".to_vec(), BodyChunk::Pending));
        assert!(sim.feed(&stdin_end(1)));
        assert_eq!(sim.read_body(key), (vec![], BodyChunk::End), "{length:?}");
    }
}

#[test]
fn fastcgi_stdin_sent_before_the_params_end_counts_against_content_length() {
    let mut sim = fastcgi();
    let mut wire = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut wire, 1);
    wire.extend_from_slice(&stdin(1, b"0123456789"));
    let head = fastcgi_head(1, Some("4"));
    // The head without its BEGIN_REQUEST (8 + 8 bytes).
    wire.extend_from_slice(&head[16..]);
    assert!(sim.feed(&wire));
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"0123".to_vec(), BodyChunk::End));
    assert_eq!(sim.protocol_errors(Protocol::FastCgi, "data_after_body"), 1);
}

fn scgi() -> Sim<StreamEngine> {
    let now = Instant::now();
    Sim::new(
        StreamEngine::scgi(Limits::default(), Timeouts::default(), now),
        now,
    )
}

fn scgi_head(content_length: u64) -> BytesMut {
    let mut out = BytesMut::new();
    encode_header(
        &mut out,
        content_length,
        &[
            (b"REQUEST_METHOD", b"POST"),
            (b"REQUEST_URI", b"/echo"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        ],
    );
    out
}

#[test]
fn scgi_bytes_past_the_body_are_dropped_and_counted_once_per_request() {
    let mut sim = scgi();
    let mut wire = scgi_head(2);
    wire.extend_from_slice(b"abextra");
    assert!(sim.feed(&wire), "the request itself is fine");
    for _ in 0..10 {
        assert!(sim.feed(&[b'j'; 4096]));
    }
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"ab".to_vec(), BodyChunk::End));
    assert_eq!(sim.protocol_errors(Protocol::Scgi, "data_after_body"), 1);
    assert!(sim.engine.close_reason().is_none(), "the response is owed");
}

#[test]
fn scgi_input_that_ends_short_of_content_length_is_a_body_error() {
    let mut sim = scgi();
    let mut wire = scgi_head(10);
    wire.extend_from_slice(b"abc");
    assert!(sim.feed(&wire));
    sim.engine.handle_read_closed(sim.now);
    sim.collect();
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"abc".to_vec(), BodyChunk::Broken));
    assert_eq!(sim.protocol_errors(Protocol::Scgi, "short_body"), 1);
}

#[test]
fn cgi_stdin_past_content_length_is_dropped() {
    let now = Instant::now();
    let mut vars = CgiVars::new();
    for (n, v) in [
        ("REQUEST_METHOD", "POST"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SCRIPT_NAME", "/cgi"),
        ("CONTENT_LENGTH", "3"),
    ] {
        vars.push(Bytes::from(n), Bytes::from(v));
    }
    let engine = StreamEngine::cgi(vars, Limits::default(), Timeouts::default(), now);
    let mut sim = Sim::new(engine, now);
    sim.collect();
    assert!(sim.feed(b"abcdef"));
    assert!(sim.feed(b"ghi"));
    let key = sim.key();
    assert_eq!(sim.read_body(key), (b"abc".to_vec(), BodyChunk::End));
    assert_eq!(sim.protocol_errors(Protocol::Cgi, "data_after_body"), 1);
}
