//! Micro-benchmarks of the wire codecs (src/proto) on a typical nginx request.
//!
//! - `decode_nginx_request`: copying the request into a reused connection buffer (as a read
//!   would), then BEGIN_REQUEST + one PARAMS record with the variables nginx's
//!   `fastcgi_params` (plus `SCRIPT_FILENAME`) and a browser's headers produce, about 1 KB,
//!   then the empty PARAMS and empty STDIN records, through `RecordDecoder`,
//!   `ParamsDecoder` and `parse_request` into a `RequestHead`.
//! - `params_only` and `parse_request_only` split that cost in two.
//! - `encode_small_response`: a 200 with Content-Type and Content-Length, a 14-byte body,
//!   the STDOUT terminator and END_REQUEST.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use ringgate::channel::Limits;
use ringgate::proto::cgi::{
    encode_response_head, parse_request, CgiVars, RequestHead, DEFAULT_MAX_HEADERS,
};

const DEFAULT_MAX_PARAMS_BYTES: usize = Limits::DEFAULT_MAX_PARAMS_BYTES;
const DEFAULT_MAX_PARAMS_PAIRS: usize = Limits::DEFAULT_MAX_PARAMS_PAIRS;
use ringgate::proto::fastcgi::{
    encode_end_request, encode_stream, encode_stream_end, BeginRequest, ParamsDecoder,
    ProtocolStatus, RecordDecoder, RecordType,
};

#[path = "support/nginx.rs"]
mod nginx;
use nginx::{nginx_request, NGINX_PARAMS};

/// Decodes the records, the params and the request head, as the FastCGI engine will.
fn decode_request(buf: &mut BytesMut) -> RequestHead {
    let mut records = RecordDecoder::new();
    let mut params = ParamsDecoder::new(DEFAULT_MAX_PARAMS_BYTES, DEFAULT_MAX_PARAMS_PAIRS);
    let mut begin = None;
    let mut vars = None;
    let mut stdin_done = false;
    while let Some(r) = records.decode(buf).expect("valid records") {
        match r.record_type {
            RecordType::BEGIN_REQUEST => begin = BeginRequest::parse(&r.content),
            RecordType::PARAMS if r.content.is_empty() => {
                let p = std::mem::replace(&mut params, ParamsDecoder::new(0, 0));
                vars = Some(p.finish().expect("valid params"));
            }
            RecordType::PARAMS => params.push_shared(r.content).expect("params within limits"),
            RecordType::STDIN => stdin_done = r.content.is_empty(),
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert!(begin.is_some_and(|b| b.keep_conn()) && stdin_done);
    parse_request(&vars.expect("params ended"), DEFAULT_MAX_HEADERS).expect("valid request")
}

fn decode_benches(c: &mut Criterion) {
    let (wire, params_len) = nginx_request();
    // Check once that the benchmark decodes what it should.
    let head = decode_request(&mut BytesMut::from(&wire[..]));
    assert_eq!(head.uri, "/index.php?page=2&sort=desc");
    assert_eq!(head.headers.len(), 10);
    assert_eq!(head.content_length, Some(0));

    let mut g = c.benchmark_group("fastcgi_request");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    // One connection buffer, refilled each time as a read would (the 1 KB copy is included).
    let mut buf = BytesMut::with_capacity(8192);
    g.bench_function("decode_nginx_request", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&wire));
            black_box(decode_request(&mut buf))
        })
    });
    // The PARAMS record content alone, and the variables alone.
    let params = wire.slice(16 + 8..16 + 8 + params_len);
    g.bench_function("params_only", |b| {
        b.iter(|| {
            black_box(
                ParamsDecoder::decode_all(
                    black_box(&params),
                    DEFAULT_MAX_PARAMS_BYTES,
                    DEFAULT_MAX_PARAMS_PAIRS,
                )
                .unwrap(),
            )
        })
    });
    let vars: CgiVars =
        ParamsDecoder::decode_all(&params, DEFAULT_MAX_PARAMS_BYTES, DEFAULT_MAX_PARAMS_PAIRS)
            .unwrap();
    g.bench_function("parse_request_only", |b| {
        b.iter(|| black_box(parse_request(black_box(&vars), DEFAULT_MAX_HEADERS).unwrap()))
    });
    g.finish();
    println!(
        "request: {} bytes on the wire, {} bytes of params, {} params",
        wire.len(),
        params_len,
        NGINX_PARAMS.len()
    );
}

fn encode_benches(c: &mut Criterion) {
    let body: &[u8] = b"Hello, world!\n";
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut out = BytesMut::with_capacity(4096);
    // The head is written into a reused scratch buffer, then framed as STDOUT.
    let mut head = BytesMut::with_capacity(256);
    let mut encode = |out: &mut BytesMut| {
        out.clear();
        head.clear();
        encode_response_head(&mut head, StatusCode::OK, black_box(&headers));
        encode_stream(out, RecordType::STDOUT, 1, &head);
        encode_stream(out, RecordType::STDOUT, 1, black_box(body));
        encode_stream_end(out, RecordType::STDOUT, 1);
        encode_end_request(out, 1, 0, ProtocolStatus::REQUEST_COMPLETE);
    };
    encode(&mut out);
    let expected_head = b"Status: 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\r\n";
    assert_eq!(&out[8..8 + expected_head.len()], expected_head);
    println!("response: {} bytes on the wire", out.len());

    let mut g = c.benchmark_group("fastcgi_response");
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("encode_small_response", |b| {
        b.iter(|| {
            encode(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, decode_benches, encode_benches);
criterion_main!(benches);
