//! One whole connection driven in memory: the real driver ([`super::driver`]), the real
//! engine and the demo application's request tasks, with socket halves that replay a script
//! (reads, resets, end of input, slow or failing sends, a server drain) on a tokio runtime
//! whose clock is virtual. The fuzz target `driver` runs arbitrary scripts through it; the
//! unit tests below run the races that once leaked.
//!
//! After every run it checks what must hold whatever the peer did: the connection closed
//! (within a day of virtual time after the script's own sleeps, even with a peer that goes
//! silent while the connection is not read), every request task ended, the worker's in-flight
//! count is back to 0, (FastCGI) what the server sent parses as a record stream, and no
//! response contradicts its own `content-length` (a complete one has exactly that many body
//! bytes; SCGI's, which may be cut short by an abort, no more), whatever the bodies the peer
//! sent against their `CONTENT_LENGTH`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::driver::{self, ReadHalf, WorkerShared, WriteHalf};
use crate::app::demo::Demo;
use crate::channel::{Channel, FastCgiEngine, Limits, Protocol, StreamEngine, Timeouts};
use crate::metrics::{ListenerLabel, SendMode, WorkerMetrics};
use crate::proto::cgi::parse_response_head;
use crate::proto::fastcgi::{EndRequest, ProtocolStatus, RecordDecoder, RecordType};

/// One step of the peer's (and the server's) script, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// The next read returns these bytes (an empty one is skipped).
    Read(Vec<u8>),
    /// The next read fails with a connection reset.
    Reset,
    /// The next read returns end of input (the peer half-closed).
    Eof,
    /// Virtual time passes before the next read.
    Sleep(Duration),
    /// From now on each send takes this long (a peer that reads slowly).
    SlowSends(Duration),
    /// From now on sends fail (the peer is gone).
    FailSends,
    /// The server starts draining.
    Drain,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every byte the server sent.
    pub sent: Bytes,
}

/// Settings small enough for a fuzzer to reach every limit.
pub fn small_limits() -> (Limits, Timeouts) {
    let limits = Limits {
        max_params_bytes: 4096,
        max_params_pairs: 64,
        max_body_buffer_bytes: 8192,
        max_requests_per_connection: 8,
        send_queue_high_water: 16384,
        max_in_flight: 4,
        ..Limits::default()
    };
    let timeouts = Timeouts {
        params: Duration::from_secs(2),
        body_idle: Duration::from_secs(3),
        keepalive_idle: Duration::from_secs(5),
        handler: Duration::from_secs(4),
        write: Duration::from_secs(4),
        drain_linger: Duration::from_millis(250),
        ..Timeouts::default()
    };
    (limits, timeouts)
}

#[derive(Default)]
struct Peer {
    script: VecDeque<Step>,
    send_delay: Duration,
    sends_fail: bool,
    sent: BytesMut,
    shut_down: bool,
}

struct SimRead {
    peer: Rc<RefCell<Peer>>,
    shutdown: Rc<Notify>,
    worker: Rc<WorkerShared<Demo>>,
    last: Vec<u8>,
}

impl ReadHalf for SimRead {
    async fn read(&mut self) -> io::Result<usize> {
        loop {
            if self.peer.borrow().shut_down {
                return Ok(0);
            }
            let step = self.peer.borrow_mut().script.pop_front();
            match step {
                Some(Step::Read(data)) if !data.is_empty() => {
                    self.last = data;
                    return Ok(self.last.len());
                }
                Some(Step::Read(_)) => {}
                Some(Step::Reset) => return Err(io::ErrorKind::ConnectionReset.into()),
                Some(Step::Eof) => return Ok(0),
                Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
                Some(Step::SlowSends(d)) => self.peer.borrow_mut().send_delay = d,
                Some(Step::FailSends) => self.peer.borrow_mut().sends_fail = true,
                Some(Step::Drain) => self.worker.drain(),
                // The script is over: the peer stays connected and silent until the server
                // closes (its own timeouts guarantee it does).
                None => {
                    self.shutdown.notified().await;
                }
            }
        }
    }

    fn filled(&self, n: usize) -> &[u8] {
        &self.last[..n]
    }
}

struct SimWrite {
    peer: Rc<RefCell<Peer>>,
    shutdown: Rc<Notify>,
}

impl WriteHalf for SimWrite {
    async fn write_all(&mut self, data: Bytes) -> io::Result<SendMode> {
        let delay = self.peer.borrow().send_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut peer = self.peer.borrow_mut();
        if peer.sends_fail {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        peer.sent.extend_from_slice(&data);
        Ok(SendMode::Direct)
    }

    fn shutdown(&mut self) {
        self.peer.borrow_mut().shut_down = true;
        self.shutdown.notify_one();
    }
}

/// Serves one connection of `protocol` that follows `script`, until it closes, and checks the
/// invariants (see the module docs); panics when one is broken.
pub fn run(protocol: Protocol, script: Vec<Step>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    let (limits, timeouts) = small_limits();
    let worker = WorkerShared::new(
        Demo,
        Rc::new(WorkerMetrics::disabled()),
        limits.clone(),
        timeouts.clone(),
    );
    let peer = Rc::new(RefCell::new(Peer {
        script: script.into(),
        ..Peer::default()
    }));
    let shutdown = Rc::new(Notify::new());
    let reader = SimRead {
        peer: peer.clone(),
        shutdown: shutdown.clone(),
        worker: worker.clone(),
        last: Vec::new(),
    };
    let writer = SimWrite {
        peer: peer.clone(),
        shutdown,
    };
    let served = worker.clone();
    let slept: Duration = peer
        .borrow()
        .script
        .iter()
        .map(|s| match s {
            Step::Sleep(d) => *d,
            _ => Duration::ZERO,
        })
        .sum();
    let limit = slept + Duration::from_secs(24 * 3600);
    local.block_on(&runtime, async move {
        let now = tokio::time::Instant::now().into_std();
        let served = async move {
            match protocol {
                Protocol::FastCgi => {
                    let engine = FastCgiEngine::new(limits, timeouts, now);
                    serve(engine, reader, writer, served).await;
                }
                Protocol::Scgi | Protocol::Cgi => {
                    let engine = StreamEngine::scgi(limits, timeouts, now);
                    serve(engine, reader, writer, served).await;
                }
            }
        };
        tokio::time::timeout(limit, served)
            .await
            .expect("the connection closes within a day of virtual time");
        // Let the request tasks the driver aborted be dropped.
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
    drop(local);
    assert_eq!(
        worker.connections(),
        0,
        "the connection is still registered"
    );
    assert_eq!(worker.in_flight(), 0, "in-flight places leaked");
    let sent = peer.borrow_mut().sent.split().freeze();
    if protocol == Protocol::FastCgi {
        let mut rest = BytesMut::from(&sent[..]);
        let mut decoder = RecordDecoder::new();
        let mut stdout: HashMap<u16, Vec<u8>> = HashMap::new();
        while let Some(r) = decoder
            .decode(&mut rest)
            .expect("the server sends a valid record stream")
        {
            match r.record_type {
                RecordType::STDOUT => stdout
                    .entry(r.request_id)
                    .or_default()
                    .extend_from_slice(&r.content),
                RecordType::END_REQUEST => {
                    let out = stdout.remove(&r.request_id).unwrap_or_default();
                    let end = EndRequest::parse(&r.content).expect("a valid END_REQUEST");
                    if end.app_status == 0
                        && end.protocol_status == ProtocolStatus::REQUEST_COMPLETE
                    {
                        check_length(&out, true);
                    }
                }
                _ => {}
            }
        }
        assert!(rest.is_empty(), "the server sent a partial record");
    } else {
        check_length(&sent, false);
    }
    Outcome { sent }
}

/// A response whose head has a `content-length` has exactly that many body bytes when
/// `complete`, and no more otherwise.
fn check_length(response: &[u8], complete: bool) {
    let Ok(Some((head, used))) = parse_response_head(response, response.len()) else {
        return;
    };
    let Some(length) = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    else {
        return;
    };
    let body = response.len() - used;
    assert!(
        body == length || (!complete && body < length),
        "a response of {body} body bytes says content-length: {length}"
    );
}

async fn serve<E: Channel + 'static>(
    engine: E,
    reader: SimRead,
    writer: SimWrite,
    worker: Rc<WorkerShared<Demo>>,
) {
    driver::serve(engine, reader, writer, worker, ListenerLabel::default()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::fastcgi::record::{encode_record, encode_stream, encode_stream_end};
    use crate::proto::fastcgi::{encode_pair, BeginRequest, RecordType, Role, FLAG_KEEP_CONN};

    /// A GET of `uri`, all in one write.
    fn request(id: u16, uri: &str) -> Vec<u8> {
        encode_request(id, "GET", uri, b"")
    }

    /// A POST of `body` to `uri`, all in one write.
    fn post(id: u16, uri: &str, body: &[u8]) -> Vec<u8> {
        encode_request(id, "POST", uri, body)
    }

    fn encode_request(id: u16, method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        BeginRequest {
            role: Role::RESPONDER,
            flags: FLAG_KEEP_CONN,
        }
        .encode(&mut out, id);
        let mut p = BytesMut::new();
        let length = body.len().to_string();
        for (n, v) in [
            ("REQUEST_METHOD", method),
            ("REQUEST_URI", uri),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("CONTENT_LENGTH", &length),
        ] {
            encode_pair(&mut p, n.as_bytes(), v.as_bytes());
        }
        encode_stream(&mut out, RecordType::PARAMS, id, &p);
        encode_stream_end(&mut out, RecordType::PARAMS, id);
        encode_stream(&mut out, RecordType::STDIN, id, body);
        encode_stream_end(&mut out, RecordType::STDIN, id);
        out.to_vec()
    }

    /// Each request's STDOUT bytes and END_REQUEST protocol status, by request id.
    fn responses(sent: &Bytes) -> std::collections::BTreeMap<u16, (Vec<u8>, Option<u8>)> {
        let mut rest = BytesMut::from(&sent[..]);
        let mut decoder = RecordDecoder::new();
        let mut out = std::collections::BTreeMap::<u16, (Vec<u8>, Option<u8>)>::new();
        while let Some(r) = decoder.decode(&mut rest).unwrap() {
            let entry = out.entry(r.request_id).or_default();
            if r.record_type == RecordType::STDOUT {
                entry.0.extend_from_slice(&r.content);
            } else if r.record_type == RecordType::END_REQUEST {
                entry.1 = Some(r.content[4]);
            }
        }
        out
    }

    #[test]
    fn requests_answered_at_once_in_one_read_are_all_served() {
        let read: Vec<u8> = (1..=8).flat_map(|id| request(id, "/hello")).collect();
        let out = responses(&run(Protocol::FastCgi, vec![Step::Read(read)]).sent);
        assert_eq!(out.len(), 8);
        for (id, (stdout, end)) in out {
            assert_eq!(end, Some(0), "request {id}");
            assert!(stdout.ends_with(b"Hello, world!\n"), "request {id}");
        }
    }

    #[test]
    fn an_echo_of_a_body_that_came_with_its_request_is_whole() {
        let body: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        let read: Vec<u8> = (1..=2).flat_map(|id| post(id, "/echo", &body)).collect();
        let out = responses(&run(Protocol::FastCgi, vec![Step::Read(read)]).sent);
        for id in 1..=2 {
            let (stdout, end) = &out[&id];
            assert_eq!(*end, Some(0));
            assert!(stdout.ends_with(&body), "request {id}: echo differs");
        }
    }

    #[test]
    fn a_ready_response_larger_than_the_send_queue_waits_for_the_peer() {
        // 64 chunks of 8 KiB, all ready at once, against a 16 KiB send-queue mark and a peer
        // that takes 10 ms per send: the rest of the body goes to a task that waits.
        let script = vec![
            Step::SlowSends(Duration::from_millis(10)),
            Step::Read(request(1, "/stream?chunks=64&size=8192")),
        ];
        let out = responses(&run(Protocol::FastCgi, script).sent);
        let (stdout, end) = &out[&1];
        assert_eq!(*end, Some(0));
        let body_at = stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &stdout[body_at..];
        assert_eq!(body.len(), 64 * 8192);
        for (k, chunk) in body.chunks(8192).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == b'a' + (k % 26) as u8),
                "chunk {k}"
            );
        }
    }

    /// A POST to `/echo` whose params say `CONTENT_LENGTH: length` and whose STDIN is `body`.
    fn post_with_length(id: u16, length: usize, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        BeginRequest {
            role: Role::RESPONDER,
            flags: FLAG_KEEP_CONN,
        }
        .encode(&mut out, id);
        let mut p = BytesMut::new();
        let length = length.to_string();
        for (n, v) in [
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/echo"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("CONTENT_LENGTH", &length),
        ] {
            encode_pair(&mut p, n.as_bytes(), v.as_bytes());
        }
        encode_stream(&mut out, RecordType::PARAMS, id, &p);
        encode_stream_end(&mut out, RecordType::PARAMS, id);
        encode_stream(&mut out, RecordType::STDIN, id, body);
        encode_stream_end(&mut out, RecordType::STDIN, id);
        out.to_vec()
    }

    #[test]
    fn an_echo_is_as_long_as_its_content_length_says_whatever_the_stdin() {
        let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut read = post_with_length(1, 5, &body);
        read.extend(post_with_length(2, 100, &body[..5]));
        // `run` checks that no complete response contradicts its content-length.
        let out = responses(&run(Protocol::FastCgi, vec![Step::Read(read)]).sent);
        let (stdout, end) = &out[&1];
        assert_eq!(*end, Some(0));
        assert!(stdout.ends_with(&body[..5]) && !stdout.ends_with(&body[..6]));
        // The short body is a body error: the echo ends as failed, not complete.
        let (stdout, _) = &out[&2];
        assert!(stdout.len() < 100 + 5, "{} bytes", stdout.len());
    }

    fn abort(id: u16) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_record(&mut out, RecordType::ABORT_REQUEST, id, &[]);
        out.to_vec()
    }

    #[test]
    fn abort_in_the_same_read_as_the_request_frees_its_place() {
        let mut read = Vec::new();
        for id in 1..=8 {
            read.extend(request(id, "/slow?ms=100"));
            read.extend(abort(id));
        }
        run(Protocol::FastCgi, vec![Step::Read(read)]);
    }

    #[test]
    fn reset_in_the_same_batch_as_the_request_frees_its_place() {
        let script = vec![Step::Read(request(1, "/slow?ms=100")), Step::Reset];
        run(Protocol::FastCgi, script);
    }

    /// A FILTER request to a handler that answers before reading (the echo reads STDIN, which
    /// never ends), with more DATA than the body buffer: the connection is no longer read and
    /// the peer goes silent. The body deadline still applies (it once did only while reading,
    /// and the request stayed in flight forever).
    #[test]
    fn a_filter_request_whose_data_is_never_read_times_out() {
        let mut read = BytesMut::new();
        BeginRequest {
            role: Role::FILTER,
            flags: FLAG_KEEP_CONN,
        }
        .encode(&mut read, 1);
        let mut params = BytesMut::new();
        for (name, value) in [
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/echo"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ] {
            encode_pair(&mut params, name.as_bytes(), value.as_bytes());
        }
        encode_stream(&mut read, RecordType::PARAMS, 1, &params);
        encode_stream_end(&mut read, RecordType::PARAMS, 1);
        encode_stream(&mut read, RecordType::STDIN, 1, b"x");
        for _ in 0..4 {
            encode_stream(&mut read, RecordType::DATA, 1, &[b'd'; 4096]);
        }
        let sent = run(Protocol::FastCgi, vec![Step::Read(read.to_vec())]).sent;
        // Its head went out, then it was ended (appStatus 1: not complete).
        assert_eq!(responses(&sent)[&1].1, Some(0), "{sent:?}");
    }

    #[test]
    fn drain_answers_a_request_sent_after_the_last_response() {
        let script = vec![
            Step::Read(request(1, "/slow?ms=100")),
            Step::Drain,
            Step::Sleep(Duration::from_millis(150)),
            Step::Read(request(2, "/hello")),
        ];
        let ends: Vec<_> = responses(&run(Protocol::FastCgi, script).sent)
            .into_iter()
            .map(|(id, (_, end))| (id, end))
            .collect();
        // Request 1 completed (0), request 2 refused with OVERLOADED (2).
        assert_eq!(ends, vec![(1, Some(0)), (2, Some(2))]);
    }
}
