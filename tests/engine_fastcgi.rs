//! In-memory simulation of the FastCGI engine against a scripted web server, with virtual
//! time: no sockets, no clock. Each test plays the peer's records in and checks the exact
//! records and events that come out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use ringgate::channel::{
    AbortCause, ApiError, BodyChunk, Channel, CloseReason, Event, FastCgiEngine, InputStream,
    Limit, Limits, NewRequest, RequestKey, Side, Stat, Timeouts,
};
use ringgate::proto::cgi::parse_response_head;
use ringgate::proto::fastcgi::record::{encode_record, encode_stream, encode_stream_end};
use ringgate::proto::fastcgi::{
    encode_pair, encode_request, BeginRequest, EndRequest, ParamsDecoder, ProtocolStatus, Record,
    RecordDecoder, RecordType, Role, FLAG_KEEP_CONN,
};

/// The scripted web server and the engine under test, with a virtual clock.
struct Sim {
    engine: FastCgiEngine,
    now: Instant,
    events: Vec<Event>,
    decoder: RecordDecoder,
    received: BytesMut,
}

impl Sim {
    fn new(limits: Limits) -> Self {
        let now = Instant::now();
        Self {
            engine: FastCgiEngine::new(limits, Timeouts::default(), now),
            now,
            events: Vec::new(),
            decoder: RecordDecoder::new(),
            received: BytesMut::new(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if let Some(deadline) = self.engine.poll_timeout() {
            if deadline <= self.now {
                self.engine.handle_timeout(self.now);
            }
        }
        self.collect();
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.engine
            .handle_input(bytes, self.now)
            .expect("valid input");
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    /// Takes every request the engine announced so far.
    fn requests(&mut self) -> Vec<NewRequest> {
        let mut out = Vec::new();
        self.events.retain_mut(|e| match e {
            Event::Request(r) => {
                out.push(std::mem::replace(
                    r,
                    Box::new(NewRequest {
                        key: r.key,
                        head: r.head.clone(),
                        vars: Default::default(),
                        role: r.role,
                        filter: None,
                        protocol: r.protocol,
                    }),
                ));
                false
            }
            _ => true,
        });
        out.into_iter().map(|b| *b).collect()
    }

    fn stats(&self) -> Vec<Stat> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Stat(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Sends everything queued, as a fast peer would read it, and decodes the records.
    fn flush(&mut self) -> Vec<Record> {
        while let Some(bytes) = self.engine.take_output() {
            let n = bytes.len();
            self.received.extend_from_slice(&bytes);
            self.engine.handle_sent(n, self.now);
        }
        self.collect();
        let mut records = Vec::new();
        while let Some(r) = self
            .decoder
            .decode(&mut self.received)
            .expect("engine output is valid")
        {
            records.push(r);
        }
        records
    }

    fn respond(&mut self, key: RequestKey, status: u16, body: &[u8]) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let status = StatusCode::from_u16(status).unwrap();
        assert!(self
            .engine
            .send_head(key, status, &headers, self.now)
            .unwrap());
        self.engine.send_body(key, body, self.now).unwrap();
        self.engine.finish(key, 0, self.now).unwrap();
        self.collect();
    }

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
}

fn nginx_params(uri: &str, method: &str, content_length: usize) -> Vec<(String, String)> {
    vec![
        ("QUERY_STRING".into(), String::new()),
        ("REQUEST_METHOD".into(), method.into()),
        ("CONTENT_TYPE".into(), String::new()),
        (
            "CONTENT_LENGTH".into(),
            if content_length == 0 {
                String::new()
            } else {
                content_length.to_string()
            },
        ),
        ("SCRIPT_NAME".into(), uri.into()),
        ("REQUEST_URI".into(), uri.into()),
        ("DOCUMENT_URI".into(), uri.into()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("REMOTE_ADDR".into(), "127.0.0.1".into()),
        ("REMOTE_PORT".into(), "50000".into()),
        ("SERVER_ADDR".into(), "127.0.0.1".into()),
        ("SERVER_PORT".into(), "80".into()),
        ("SERVER_NAME".into(), "localhost".into()),
        ("HTTP_HOST".into(), "localhost".into()),
    ]
}

fn params_bytes(params: &[(String, String)]) -> BytesMut {
    let mut b = BytesMut::new();
    for (n, v) in params {
        encode_pair(&mut b, n.as_bytes(), v.as_bytes());
    }
    b
}

/// A BEGIN_REQUEST with KEEP_CONN, to which a test appends the rest of its request.
fn begin(role: Role, id: u16) -> BytesMut {
    let mut out = BytesMut::new();
    BeginRequest {
        role,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, id);
    out
}

/// BEGIN_REQUEST + PARAMS + empty PARAMS + STDIN(body) + empty STDIN.
fn request(id: u16, role: Role, flags: u8, uri: &str, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let method = if body.is_empty() { "GET" } else { "POST" };
    let vars = nginx_params(uri, method, body.len());
    let pairs = vars.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    encode_request(&mut out, id, role, flags, pairs, body);
    out
}

/// The response of one request id: (stdout, end), checking the record order.
fn response_of(records: &[Record], id: u16) -> (Vec<u8>, EndRequest) {
    let mut stdout = Vec::new();
    let mut stdout_closed = false;
    let mut end = None;
    for r in records.iter().filter(|r| r.request_id == id) {
        assert!(end.is_none(), "record after END_REQUEST for id {id}");
        match r.record_type {
            RecordType::STDOUT if r.content.is_empty() => stdout_closed = true,
            RecordType::STDOUT => {
                assert!(!stdout_closed, "STDOUT after its end");
                stdout.extend_from_slice(&r.content);
            }
            RecordType::END_REQUEST => end = EndRequest::parse(&r.content),
            RecordType::STDERR => {}
            other => panic!("unexpected record {other:?}"),
        }
    }
    let end = end.unwrap_or_else(|| panic!("no END_REQUEST for id {id}"));
    if end.protocol_status == ProtocolStatus::REQUEST_COMPLETE {
        assert!(
            stdout_closed,
            "STDOUT not closed before END_REQUEST for id {id}"
        );
    }
    (stdout, end)
}

fn status_and_body(stdout: &[u8]) -> (u16, Vec<u8>) {
    let (head, used) = parse_response_head(stdout, 64 * 1024)
        .unwrap()
        .expect("complete head");
    (head.status.as_u16(), stdout[used..].to_vec())
}

#[test]
fn simple_request_round_trip() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/hello", b""));
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].head.uri.path(), "/hello");
    assert_eq!(reqs[0].head.content_length, Some(0));
    let key = reqs[0].key;
    assert_eq!(sim.read_body(key), (vec![], BodyChunk::End));
    sim.respond(key, 200, b"Hello, world!\n");
    let records = sim.flush();
    let (stdout, end) = response_of(&records, 1);
    assert_eq!(end.protocol_status, ProtocolStatus::REQUEST_COMPLETE);
    assert_eq!(status_and_body(&stdout), (200, b"Hello, world!\n".to_vec()));
    // Output is padded to 8 bytes: every record boundary is aligned.
    assert!(
        sim.engine.close_reason().is_none(),
        "KEEP_CONN keeps the connection"
    );
    assert!(sim
        .stats()
        .iter()
        .any(|s| matches!(s, Stat::RequestFinished { status: 200, .. })));
}

#[test]
fn output_records_are_aligned_to_eight_bytes() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    let key = sim.requests()[0].key;
    sim.respond(key, 200, b"odd");
    let mut all = Vec::new();
    while let Some(b) = sim.engine.take_output() {
        all.extend_from_slice(&b);
    }
    assert_eq!(all.len() % 8, 0);
    let mut pos = 0;
    while pos < all.len() {
        let len = u16::from_be_bytes([all[pos + 4], all[pos + 5]]) as usize;
        let pad = all[pos + 6] as usize;
        assert_eq!((len + pad) % 8, 0);
        pos += 8 + len + pad;
    }
}

#[test]
fn without_keep_conn_the_connection_closes_after_the_response() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, 0, "/x", b""));
    let key = sim.requests()[0].key;
    assert_eq!(sim.engine.close_reason(), None);
    sim.respond(key, 200, b"x");
    sim.flush();
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::Done));
}

#[test]
fn sixteen_interleaved_requests_byte_by_byte() {
    let mut sim = Sim::new(Limits::default());
    // Interleave the records of 20 requests, then feed the stream one byte at a time.
    let mut per_id: Vec<Vec<BytesMut>> = Vec::new();
    for id in 1..=20u16 {
        let body = vec![b'0' + (id % 10) as u8; 1000 + id as usize];
        let mut recs = Vec::new();
        let mut b = BytesMut::new();
        BeginRequest {
            role: Role::RESPONDER,
            flags: FLAG_KEEP_CONN,
        }
        .encode(&mut b, id);
        recs.push(b);
        let params = params_bytes(&nginx_params(&format!("/r/{id}"), "POST", body.len()));
        // Split the params in two records, inside a pair.
        let (a, c) = params.split_at(7);
        for part in [a, c] {
            let mut b = BytesMut::new();
            encode_record(&mut b, RecordType::PARAMS, id, part);
            recs.push(b);
        }
        let mut b = BytesMut::new();
        encode_stream_end(&mut b, RecordType::PARAMS, id);
        recs.push(b);
        for chunk in body.chunks(300) {
            let mut b = BytesMut::new();
            encode_record(&mut b, RecordType::STDIN, id, chunk);
            recs.push(b);
        }
        let mut b = BytesMut::new();
        encode_stream_end(&mut b, RecordType::STDIN, id);
        recs.push(b);
        per_id.push(recs);
    }
    let mut stream = Vec::new();
    let mut round = 0;
    loop {
        let mut any = false;
        for recs in &per_id {
            if let Some(r) = recs.get(round) {
                stream.extend_from_slice(r);
                any = true;
            }
        }
        if !any {
            break;
        }
        round += 1;
    }
    for byte in stream {
        sim.feed(&[byte]);
    }
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 20);
    let mut keys = HashMap::new();
    for r in &reqs {
        let id: u16 = r.head.uri.path().trim_start_matches("/r/").parse().unwrap();
        keys.insert(id, r.key);
    }
    // Answer in reverse order, each echoing its body.
    for id in (1..=20u16).rev() {
        let (body, end) = sim.read_body(keys[&id]);
        assert_eq!(end, BodyChunk::End);
        assert_eq!(body, vec![b'0' + (id % 10) as u8; 1000 + id as usize]);
        sim.respond(keys[&id], 200, &body);
    }
    let records = sim.flush();
    for id in 1..=20u16 {
        let (stdout, end) = response_of(&records, id);
        assert_eq!(end.protocol_status, ProtocolStatus::REQUEST_COMPLETE);
        let (status, body) = status_and_body(&stdout);
        assert_eq!(status, 200);
        assert_eq!(body.len(), 1000 + id as usize);
    }
    let max_concurrency = sim
        .stats()
        .iter()
        .filter_map(|s| match s {
            Stat::ConnectionConcurrency { in_flight } => Some(*in_flight),
            _ => None,
        })
        .max();
    assert_eq!(max_concurrency, Some(20));
}

#[test]
fn input_padding_is_skipped() {
    let mut sim = Sim::new(Limits::default());
    let mut input = begin(Role::RESPONDER, 3);
    // A PARAMS record with 200 bytes of padding, built by hand.
    let params = params_bytes(&nginx_params("/pad", "GET", 0));
    input.extend_from_slice(&[
        1,
        4,
        0,
        3,
        (params.len() >> 8) as u8,
        params.len() as u8,
        200,
        0,
    ]);
    input.extend_from_slice(&params);
    input.extend_from_slice(&[0xAA; 200]);
    encode_stream_end(&mut input, RecordType::PARAMS, 3);
    encode_stream_end(&mut input, RecordType::STDIN, 3);
    sim.feed(&input);
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].head.uri.path(), "/pad");
}

#[test]
fn abort_request_yields_exactly_one_end_request() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(5, Role::RESPONDER, FLAG_KEEP_CONN, "/slow", b""));
    let key = sim.requests()[0].key;
    let mut abort = BytesMut::new();
    encode_record(&mut abort, RecordType::ABORT_REQUEST, 5, &[]);
    sim.feed(&abort);
    // A second abort for the same id, and one for an id never seen, are ignored.
    sim.feed(&abort);
    let mut other = BytesMut::new();
    encode_record(&mut other, RecordType::ABORT_REQUEST, 77, &[]);
    sim.feed(&other);
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Aborted(k, AbortCause::PeerAbort) if *k == key)));
    let records = sim.flush();
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r.record_type == RecordType::END_REQUEST)
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].request_id, 5);
    // The handler's key is stale now: no panic, no effect.
    assert_eq!(
        sim.engine
            .send_head(key, StatusCode::OK, &HeaderMap::new(), sim.now),
        Err(ApiError::UnknownRequest)
    );
    assert_eq!(
        sim.engine.finish(key, 0, sim.now),
        Err(ApiError::UnknownRequest)
    );
    assert!(sim.flush().is_empty());
}

#[test]
fn a_reused_request_id_never_reaches_the_old_state() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/first", b""));
    let old = sim.requests()[0].key;
    sim.respond(old, 200, b"1");
    sim.flush();
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/second", b""));
    let new = sim.requests()[0].key;
    assert_ne!(old, new);
    assert_eq!(
        sim.engine
            .send_head(old, StatusCode::OK, &HeaderMap::new(), sim.now),
        Err(ApiError::UnknownRequest)
    );
    sim.respond(new, 201, b"2");
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout), (201, b"2".to_vec()));
}

#[test]
fn get_values_answers_known_names_only() {
    let limits = Limits {
        max_requests_per_connection: 33,
        max_connections: 500,
        ..Limits::default()
    };
    let mut sim = Sim::new(limits);
    let mut q = BytesMut::new();
    for name in [
        "FCGI_MAX_CONNS",
        "FCGI_MAX_REQS",
        "FCGI_MPXS_CONNS",
        "NOT_A_VALUE",
    ] {
        encode_pair(&mut q, name.as_bytes(), b"");
    }
    let mut rec = BytesMut::new();
    encode_record(&mut rec, RecordType::GET_VALUES, 0, &q);
    sim.feed(&rec);
    let records = sim.flush();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record_type, RecordType::GET_VALUES_RESULT);
    assert_eq!(records[0].request_id, 0);
    let vars = ParamsDecoder::decode_all(&records[0].content, 4096, 16).unwrap();
    assert_eq!(vars.get("FCGI_MAX_CONNS"), Some(&b"500"[..]));
    assert_eq!(vars.get("FCGI_MAX_REQS"), Some(&b"33"[..]));
    assert_eq!(vars.get("FCGI_MPXS_CONNS"), Some(&b"1"[..]));
    assert_eq!(vars.len(), 3);
    assert!(sim.stats().contains(&Stat::GetValuesServed));
}

#[test]
fn unknown_management_type_gets_unknown_type() {
    let mut sim = Sim::new(Limits::default());
    let mut rec = BytesMut::new();
    encode_record(&mut rec, RecordType(42), 0, b"whatever");
    sim.feed(&rec);
    let records = sim.flush();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record_type, RecordType::UNKNOWN_TYPE);
    assert_eq!(records[0].content[0], 42);
    assert!(sim.stats().contains(&Stat::UnknownTypeSent));
}

#[test]
fn unknown_role_is_refused_under_its_own_id() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(9, Role(7), FLAG_KEEP_CONN, "/x", b""));
    assert!(sim.requests().is_empty());
    let records = sim.flush();
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r.record_type == RecordType::END_REQUEST)
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].request_id, 9);
    assert_eq!(
        EndRequest::parse(&ends[0].content).unwrap().protocol_status,
        ProtocolStatus::UNKNOWN_ROLE
    );
    assert!(sim.stats().contains(&Stat::Refused {
        status: ProtocolStatus::UNKNOWN_ROLE
    }));
}

#[test]
fn without_multiplexing_a_second_request_gets_cant_mpx_conn_and_the_first_goes_on() {
    let mut sim = Sim::new(Limits {
        mpxs_conns: false,
        ..Limits::default()
    });
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/first", b""));
    sim.feed(&request(2, Role::RESPONDER, FLAG_KEEP_CONN, "/second", b""));
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    let records = sim.flush();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].request_id, 2);
    assert_eq!(
        EndRequest::parse(&records[0].content)
            .unwrap()
            .protocol_status,
        ProtocolStatus::CANT_MPX_CONN
    );
    sim.respond(reqs[0].key, 200, b"ok");
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 200);
}

#[test]
fn over_the_per_connection_limit_is_overloaded() {
    let mut sim = Sim::new(Limits {
        max_requests_per_connection: 2,
        ..Limits::default()
    });
    for id in 1..=3 {
        sim.feed(&request(id, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    }
    assert_eq!(sim.requests().len(), 2);
    let records = sim.flush();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].request_id, 3);
    assert_eq!(
        EndRequest::parse(&records[0].content)
            .unwrap()
            .protocol_status,
        ProtocolStatus::OVERLOADED
    );
    assert!(sim.stats().contains(&Stat::LimitHit {
        limit: Limit::MaxRequestsPerConnection
    }));
}

#[test]
fn oversized_params_get_431_before_reaching_the_application() {
    let mut sim = Sim::new(Limits {
        max_params_bytes: 1024,
        ..Limits::default()
    });
    let mut input = begin(Role::RESPONDER, 1);
    let mut params = BytesMut::new();
    encode_pair(&mut params, b"HTTP_COOKIE", &[b'c'; 2000]);
    encode_stream(&mut input, RecordType::PARAMS, 1, &params);
    encode_stream_end(&mut input, RecordType::PARAMS, 1);
    encode_stream_end(&mut input, RecordType::STDIN, 1);
    sim.feed(&input);
    assert!(sim.requests().is_empty());
    let (stdout, end) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 431);
    assert_eq!(end.protocol_status, ProtocolStatus::REQUEST_COMPLETE);
    assert!(sim.stats().contains(&Stat::LimitHit {
        limit: Limit::MaxParamsBytes
    }));
    // The connection is still usable.
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/next", b""));
    assert_eq!(sim.requests().len(), 1);
}

#[test]
fn a_bad_server_protocol_is_a_400_not_a_crash() {
    let mut sim = Sim::new(Limits::default());
    let mut input = begin(Role::RESPONDER, 1);
    let mut params = nginx_params("/x", "GET", 0);
    params.retain(|(n, _)| n != "SERVER_PROTOCOL");
    params.push(("SERVER_PROTOCOL".into(), "SPDY/9".into()));
    encode_stream(&mut input, RecordType::PARAMS, 1, &params_bytes(&params));
    encode_stream_end(&mut input, RecordType::PARAMS, 1);
    sim.feed(&input);
    assert!(sim.requests().is_empty());
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 400);
}

#[test]
fn a_bad_version_closes_the_connection() {
    let mut sim = Sim::new(Limits::default());
    let err = sim.engine.handle_input(&[2, 1, 0, 1, 0, 8, 0, 0], sim.now);
    assert!(err.is_err());
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::ProtocolError));
}

#[test]
fn half_close_is_not_an_abort() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, 0, "/x", b""));
    let key = sim.requests()[0].key;
    sim.engine.handle_read_closed(sim.now);
    sim.collect();
    assert!(sim.stats().contains(&Stat::HalfClose {
        protocol: ringgate::channel::Protocol::FastCgi,
        side: Side::Read
    }));
    assert!(!sim.events.iter().any(|e| matches!(e, Event::Aborted(..))));
    assert_eq!(
        sim.engine.close_reason(),
        None,
        "the response is still owed"
    );
    sim.respond(key, 200, &vec![b'z'; 100_000]);
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).1.len(), 100_000);
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::Done));
}

#[test]
fn write_side_loss_aborts_every_request() {
    let mut sim = Sim::new(Limits::default());
    for id in 1..=3 {
        sim.feed(&request(id, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    }
    assert_eq!(sim.requests().len(), 3);
    sim.engine.handle_write_failed(sim.now);
    sim.collect();
    let aborted = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Aborted(_, AbortCause::ConnectionLost)))
        .count();
    assert_eq!(aborted, 3);
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::IoError));
}

#[test]
fn a_stalled_output_queue_pauses_producers_fairly_and_counts_the_stall() {
    let mut sim = Sim::new(Limits {
        send_queue_high_water: 64 * 1024,
        ..Limits::default()
    });
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/a", b""));
    sim.feed(&request(2, Role::RESPONDER, FLAG_KEEP_CONN, "/b", b""));
    let reqs = sim.requests();
    let (a, b) = (reqs[0].key, reqs[1].key);
    for key in [a, b] {
        sim.engine
            .send_head(key, StatusCode::OK, &HeaderMap::new(), sim.now)
            .unwrap();
    }
    // A produces until the queue is over the mark; then both are paused.
    while sim.engine.poll_produce(a, sim.now) {
        sim.engine
            .send_body(a, &[b'a'; 16 * 1024], sim.now)
            .unwrap();
    }
    assert!(!sim.engine.poll_produce(b, sim.now));
    // The peer does not read for 2 s.
    let taken = sim.engine.take_output().unwrap();
    sim.now += Duration::from_secs(2);
    sim.engine.handle_sent(taken.len(), sim.now);
    sim.collect();
    let woken: Vec<RequestKey> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Writable(k) => Some(*k),
            _ => None,
        })
        .collect();
    assert_eq!(woken, vec![a, b], "paused producers resume oldest first");
    let stalls: Vec<Duration> = sim
        .stats()
        .iter()
        .filter_map(|s| match s {
            Stat::ProducerStall { duration } => Some(*duration),
            _ => None,
        })
        .collect();
    assert_eq!(stalls, vec![Duration::from_secs(2); 2]);
}

#[test]
fn one_mebibyte_both_ways() {
    let mut sim = Sim::new(Limits::default());
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let input = request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/echo", &body);
    // Feed in 1000-byte reads, draining the body as a handler would.
    let key;
    let mut got = Vec::new();
    let mut chunks = input.chunks(1000);
    loop {
        let Some(c) = chunks.next() else {
            panic!("request never announced")
        };
        sim.feed(c);
        if let Some(r) = sim.requests().pop() {
            key = r.key;
            break;
        }
    }
    for c in chunks {
        assert!(sim.engine.wants_read());
        sim.feed(c);
        let (part, _) = sim.read_body(key);
        got.extend_from_slice(&part);
    }
    let (rest, end) = sim.read_body(key);
    got.extend_from_slice(&rest);
    assert_eq!(end, BodyChunk::End);
    assert_eq!(got, body);
    sim.engine
        .send_head(key, StatusCode::OK, &HeaderMap::new(), sim.now)
        .unwrap();
    sim.engine.send_body(key, &got, sim.now).unwrap();
    sim.engine.finish(key, 0, sim.now).unwrap();
    let records = sim.flush();
    assert!(records.iter().all(|r| r.content.len() <= 65535));
    let (stdout, _) = response_of(&records, 1);
    assert_eq!(status_and_body(&stdout).1, body);
}

#[test]
fn an_unread_body_stops_reading_at_the_bound_and_resumes() {
    let mut sim = Sim::new(Limits {
        max_body_buffer_bytes: 10_000,
        ..Limits::default()
    });
    let body = vec![7u8; 50_000];
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/echo", &body)[..]);
    // All of it arrived in one read (the bound is checked per read), so reading stops.
    assert!(!sim.engine.wants_read());
    let key = sim.requests()[0].key;
    sim.now += Duration::from_millis(300);
    let (got, end) = sim.read_body(key);
    assert_eq!((got.len(), end), (50_000, BodyChunk::End));
    assert!(sim.engine.wants_read());
    assert!(sim.stats().contains(&Stat::InputStall {
        duration: Duration::from_millis(300)
    }));
}

#[test]
fn the_request_that_reaches_the_bound_stalls_reading_and_its_end_resumes_it() {
    let mut sim = Sim::new(Limits {
        max_body_buffer_bytes: 10_000,
        ..Limits::default()
    });
    // One byte under the bound: reading goes on.
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/echo", &[1; 9_999])[..]);
    assert!(sim.engine.wants_read());
    // A second request's body at the bound stops it, whatever the first one holds.
    sim.feed(&request(2, Role::RESPONDER, FLAG_KEEP_CONN, "/echo", &[2; 10_000])[..]);
    assert!(!sim.engine.wants_read());
    let keys: Vec<_> = sim.requests().iter().map(|r| r.key).collect();
    // Ending the request that holds the bound (not reading its body) resumes reading.
    sim.now += Duration::from_millis(200);
    sim.engine
        .abort(keys[1], AbortCause::HandlerError, sim.now)
        .unwrap();
    sim.collect();
    assert!(sim.engine.wants_read());
    assert!(sim.stats().contains(&Stat::InputStall {
        duration: Duration::from_millis(200)
    }));
}

#[test]
fn interim_responses_are_dropped() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    let key = sim.requests()[0].key;
    assert_eq!(
        sim.engine
            .send_head(key, StatusCode::CONTINUE, &HeaderMap::new(), sim.now),
        Ok(false)
    );
    assert!(sim.flush().is_empty(), "a 1xx never reaches STDOUT");
    sim.respond(key, 200, b"final");
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout), (200, b"final".to_vec()));
}

#[test]
fn a_handler_abort_before_the_head_is_a_500() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    let key = sim.requests()[0].key;
    sim.engine
        .abort(key, AbortCause::HandlerError, sim.now)
        .unwrap();
    let (stdout, end) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 500);
    assert_eq!(end.app_status, 1);
    assert!(
        sim.engine.close_reason().is_none(),
        "other requests are unaffected"
    );
}

#[test]
fn stderr_is_its_own_stream() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/x", b""));
    let key = sim.requests()[0].key;
    sim.engine.send_stderr(key, b"warning: x").unwrap();
    sim.respond(key, 200, b"");
    let records = sim.flush();
    assert!(records
        .iter()
        .any(|r| r.record_type == RecordType::STDERR
            && r.content == Bytes::from_static(b"warning: x")));
}

#[test]
fn filter_role_data_stream_reaches_the_handler() {
    let mut sim = Sim::new(Limits::default());
    let mut input = begin(Role::FILTER, 4);
    let mut params = nginx_params("/f", "GET", 0);
    params.push(("FCGI_DATA_LENGTH".into(), "5".into()));
    params.push(("FCGI_DATA_LAST_MOD".into(), "1700000000".into()));
    encode_stream(&mut input, RecordType::PARAMS, 4, &params_bytes(&params));
    encode_stream_end(&mut input, RecordType::PARAMS, 4);
    encode_stream_end(&mut input, RecordType::STDIN, 4);
    encode_stream(&mut input, RecordType::DATA, 4, b"hello");
    encode_stream_end(&mut input, RecordType::DATA, 4);
    sim.feed(&input);
    let reqs = sim.requests();
    assert_eq!(reqs[0].role, Role::FILTER);
    let filter = reqs[0].filter.unwrap();
    assert_eq!(filter.data_length, Some(5));
    assert_eq!(filter.data_last_mod, Some(1_700_000_000));
    let key = reqs[0].key;
    assert_eq!(
        sim.engine.poll_body(key, InputStream::FilterData, sim.now),
        BodyChunk::Data(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        sim.engine.poll_body(key, InputStream::FilterData, sim.now),
        BodyChunk::End
    );
}

#[test]
fn authorizer_role_is_accepted() {
    let mut sim = Sim::new(Limits::default());
    sim.feed(&request(2, Role::AUTHORIZER, FLAG_KEEP_CONN, "/auth", b""));
    let reqs = sim.requests();
    assert_eq!(reqs[0].role, Role::AUTHORIZER);
}

#[test]
fn params_timeout_answers_408_and_keepalive_idle_closes() {
    let mut sim = Sim::new(Limits::default());
    let input = begin(Role::RESPONDER, 1);
    sim.feed(&input);
    sim.advance(Timeouts::DEFAULT_PARAMS + Duration::from_millis(1));
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 408);
    assert!(sim.stats().contains(&Stat::LimitHit {
        limit: Limit::ParamsTimeout
    }));
    assert_eq!(sim.engine.close_reason(), None);
    sim.advance(Timeouts::DEFAULT_KEEPALIVE_IDLE + Duration::from_millis(1));
    assert_eq!(sim.engine.close_reason(), Some(CloseReason::Timeout));
}

#[test]
fn body_idle_timeout_aborts_the_request() {
    let mut sim = Sim::new(Limits::default());
    let mut input = begin(Role::RESPONDER, 1);
    encode_stream(
        &mut input,
        RecordType::PARAMS,
        1,
        &params_bytes(&nginx_params("/echo", "POST", 10)),
    );
    encode_stream_end(&mut input, RecordType::PARAMS, 1);
    encode_record(&mut input, RecordType::STDIN, 1, b"12345");
    sim.feed(&input);
    let key = sim.requests()[0].key;
    sim.advance(Timeouts::DEFAULT_BODY_IDLE + Duration::from_millis(1));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Aborted(k, AbortCause::Timeout) if *k == key)));
    let (stdout, _) = response_of(&sim.flush(), 1);
    assert_eq!(status_and_body(&stdout).0, 408);
}

/// Replies the engine writes itself count against the send-queue mark: a peer that pipelines
/// GET_VALUES without reading stops being read once the queue is full, and the held-back
/// records are answered, in order, as the queue drains.
#[test]
fn self_made_replies_stop_at_the_send_queue_mark() {
    let mut sim = Sim::new(Limits {
        send_queue_high_water: 1024,
        ..Limits::default()
    });
    let mut query = BytesMut::new();
    encode_pair(&mut query, b"FCGI_MAX_REQS", b"");
    let mut one = BytesMut::new();
    encode_record(&mut one, RecordType::GET_VALUES, 0, &query);
    let pipelined: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    sim.feed(&pipelined);
    assert!(!sim.engine.wants_read(), "still reading with a full queue");
    let queued = sim.engine.queued_output();
    assert!(
        (1024..1024 + 64).contains(&queued),
        "queued {queued} bytes against a mark of 1024"
    );
    // Draining the queue answers the rest, a mark's worth at a time.
    let mut answered = 0;
    while answered < 1000 {
        let records = sim.flush();
        assert!(!records.is_empty(), "stuck after {answered} replies");
        assert!(records
            .iter()
            .all(|r| r.record_type == RecordType::GET_VALUES_RESULT));
        answered += records.len();
        assert!(sim.engine.queued_output() < 1024 + 64);
    }
    assert_eq!(answered, 1000);
    assert!(sim.engine.wants_read());
}

#[test]
fn params_read_with_a_large_body_decode_as_params_read_alone() {
    // One read with a 60 KiB body after the params (their buffer is then copied, not kept
    // alive by the variables), and the same request in 100-byte reads (the params shared).
    let body = vec![b'b'; 60 * 1024];
    let wire = request(1, Role::RESPONDER, FLAG_KEEP_CONN, "/upload?x=1", &body);
    let mut whole = Sim::new(Limits::default());
    whole.feed(&wire);
    let mut pieces = Sim::new(Limits::default());
    for chunk in wire.chunks(100) {
        pieces.feed(chunk);
    }
    let (a, b) = (whole.requests(), pieces.requests());
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0].vars, b[0].vars);
    assert_eq!(a[0].head.uri, "/upload?x=1");
    assert_eq!(a[0].head.content_length, Some(body.len() as u64));
    assert_eq!(a[0].vars.get("REQUEST_METHOD"), Some(&b"POST"[..]));
    let key = a[0].key;
    assert_eq!(whole.read_body(key), (body, BodyChunk::End));
}
