//! The whole connection driver (engine, request tasks of the demo application, timers)
//! driven in memory by an arbitrary peer: well-formed requests to every demo route, with
//! bodies longer or shorter than their `CONTENT_LENGTH` (or none), aborts, raw bytes, reads
//! split anywhere, resets, half-closes, slow and failing sends, a server drain, FILTER
//! requests with DATA sent before (or instead of) the end of STDIN, and storms of aborts that
//! reuse their ids at once, on a virtual clock. `ringgate::rt::sim::run` checks the invariants
//! after each run: the connection closes, no request task outlives it, the in-flight count is
//! back at 0, the output is a valid FastCGI record stream, and no response contradicts its
//! own `content-length`.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringgate::channel::Protocol;
use ringgate::proto::fastcgi::record::{encode_record, encode_stream, encode_stream_end};
use ringgate::proto::fastcgi::{encode_pair, BeginRequest, RecordType, Role, FLAG_KEEP_CONN};
use ringgate::rt::sim::{run, Step};

#[derive(Arbitrary, Debug)]
enum Route {
    Hello,
    Echo,
    Slow(u8),
    Stream { chunks: u8, size: u16 },
    Status(u16),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A whole request, sent in pieces of `split` bytes (0: all at once).
    Request {
        id: u8,
        keep_conn: bool,
        route: Route,
        body: u16,
        /// `CONTENT_LENGTH` minus the body's length; `i8::MIN`: no `CONTENT_LENGTH` on
        /// FastCGI (SCGI, which requires one, then declares the body's length).
        length_error: i8,
        split: u8,
    },
    Abort(u8),
    /// A FILTER request to `route` with `data` bytes of DATA sent before STDIN ends (or
    /// without its end at all).
    Filter {
        id: u8,
        route: Route,
        data: u16,
        stdin_end: bool,
    },
    /// `rounds` times, in one read each: ABORT_REQUEST then a new request under each of the
    /// ids 1..=`ids` (twice per id when `twice`: the first one aborted in the same read).
    AbortStorm { ids: u8, rounds: u8, twice: bool },
    Raw(Vec<u8>),
    Reset,
    Eof,
    Sleep(u16),
    SlowSends(u16),
    FailSends,
    Drain,
}

#[derive(Arbitrary, Debug)]
struct Input {
    scgi: bool,
    ops: Vec<Op>,
}

fn uri(route: &Route) -> String {
    match route {
        Route::Hello => "/hello".into(),
        Route::Echo => "/echo".into(),
        Route::Slow(ms) => format!("/slow?ms={}", u32::from(*ms) * 10),
        Route::Stream { chunks, size } => format!("/stream?chunks={chunks}&size={size}"),
        Route::Status(s) => format!("/status/{}", 100 + s % 500),
    }
}

fn vars(uri: &str, body: usize, length: Option<usize>) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("REQUEST_METHOD", if body > 0 { "POST" } else { "GET" }.into()),
        ("REQUEST_URI", uri.into()),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
    ];
    if let Some(length) = length {
        vars.push(("CONTENT_LENGTH", length.to_string()));
    }
    vars
}

/// The declared length of a body of `body` bytes that is `error` bytes off.
fn declared(body: usize, error: i8) -> Option<usize> {
    (error != i8::MIN).then(|| body.saturating_add_signed(isize::from(error)))
}

fn fastcgi_request(
    id: u16,
    keep_conn: bool,
    uri: &str,
    body: usize,
    length: Option<usize>,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: if keep_conn { FLAG_KEEP_CONN } else { 0 },
    }
    .encode(&mut out, id);
    let mut params = BytesMut::new();
    for (name, value) in vars(uri, body, length) {
        encode_pair(&mut params, name.as_bytes(), value.as_bytes());
    }
    encode_stream(&mut out, RecordType::PARAMS, id, &params);
    encode_stream_end(&mut out, RecordType::PARAMS, id);
    encode_stream(&mut out, RecordType::STDIN, id, &vec![b'b'; body]);
    encode_stream_end(&mut out, RecordType::STDIN, id);
    out.to_vec()
}

fn filter_request(id: u16, uri: &str, data: usize, stdin_end: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    BeginRequest {
        role: Role::FILTER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, id);
    let mut params = BytesMut::new();
    for (name, value) in vars(uri, 1, Some(1)) {
        encode_pair(&mut params, name.as_bytes(), value.as_bytes());
    }
    encode_pair(&mut params, b"FCGI_DATA_LENGTH", data.to_string().as_bytes());
    encode_stream(&mut out, RecordType::PARAMS, id, &params);
    encode_stream_end(&mut out, RecordType::PARAMS, id);
    encode_stream(&mut out, RecordType::STDIN, id, b"s");
    for chunk in vec![b'd'; data].chunks(4096) {
        encode_stream(&mut out, RecordType::DATA, id, chunk);
    }
    encode_stream_end(&mut out, RecordType::DATA, id);
    if stdin_end {
        encode_stream_end(&mut out, RecordType::STDIN, id);
    }
    out.to_vec()
}

fn abort(id: u16) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_record(&mut out, RecordType::ABORT_REQUEST, id, &[]);
    out.to_vec()
}

fn scgi_request(uri: &str, body: usize, length: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    let vars = vars(uri, body, None);
    let pairs: Vec<(&[u8], &[u8])> = vars
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    ringgate::proto::scgi::encode_header(&mut out, length as u64, &pairs);
    out.extend(std::iter::repeat_n(b'b', body));
    out.to_vec()
}

fuzz_target!(|input: Input| {
    let mut script = Vec::new();
    for op in input.ops {
        match op {
            Op::Request {
                id,
                keep_conn,
                route,
                body,
                length_error,
                split,
            } => {
                let body = usize::from(body % 20_000);
                let length = declared(body, length_error);
                let bytes = if input.scgi {
                    scgi_request(&uri(&route), body, length.unwrap_or(body))
                } else {
                    let id = u16::from(id % 10) + 1;
                    fastcgi_request(id, keep_conn, &uri(&route), body, length)
                };
                let split = if split == 0 { bytes.len() } else { usize::from(split) };
                script.extend(bytes.chunks(split).map(|c| Step::Read(c.to_vec())));
            }
            Op::Abort(id) => script.push(Step::Read(abort(u16::from(id % 10) + 1))),
            Op::Filter { .. } | Op::AbortStorm { .. } if input.scgi => {}
            Op::Filter {
                id,
                route,
                data,
                stdin_end,
            } => {
                let data = usize::from(data % 40_000);
                let bytes = filter_request(u16::from(id % 10) + 1, &uri(&route), data, stdin_end);
                script.push(Step::Read(bytes));
            }
            Op::AbortStorm { ids, rounds, twice } => {
                for _ in 0..rounds % 16 {
                    let mut read = Vec::new();
                    for id in 1..=u16::from(ids % 12) {
                        for _ in 0..if twice { 2 } else { 1 } {
                            read.extend(abort(id));
                            read.extend(fastcgi_request(id, true, "/slow?ms=500", 0, None));
                        }
                    }
                    script.push(Step::Read(read));
                }
            }
            Op::Raw(bytes) => script.push(Step::Read(bytes)),
            Op::Reset => script.push(Step::Reset),
            Op::Eof => script.push(Step::Eof),
            Op::Sleep(ms) => script.push(Step::Sleep(Duration::from_millis(u64::from(ms)))),
            Op::SlowSends(ms) => {
                script.push(Step::SlowSends(Duration::from_millis(u64::from(ms % 2000))))
            }
            Op::FailSends => script.push(Step::FailSends),
            Op::Drain => script.push(Step::Drain),
        }
    }
    let protocol = if input.scgi {
        Protocol::Scgi
    } else {
        Protocol::FastCgi
    };
    run(protocol, script);
});
