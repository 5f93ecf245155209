//! The FastCGI engine driven by an arbitrary peer: arbitrary bytes in arbitrary reads, with
//! the application answering, aborting or ignoring each request, the clock jumping, the peer
//! reading or not, half-closing or failing. Nothing may panic, every output must be a valid
//! record stream, and buffering must stay within the configured limits.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use ringgate::channel::{AbortCause, Channel, Event, FastCgiEngine, InputStream, Limits, Timeouts};
use ringgate::proto::fastcgi::RecordDecoder;

#[derive(Arbitrary, Debug)]
enum Step {
    Input(Vec<u8>),
    Respond { which: u8, status: u16, body: u16 },
    ReadBody { which: u8 },
    Abort { which: u8 },
    Stderr { which: u8 },
    Advance { millis: u16 },
    Flush,
    ReadClosed,
    WriteFailed,
    Drain,
}

fuzz_target!(|steps: Vec<Step>| {
    let limits = Limits {
        max_params_bytes: 2048,
        max_params_pairs: 32,
        max_body_buffer_bytes: 4096,
        max_requests_per_connection: 8,
        send_queue_high_water: 8192,
        ..Limits::default()
    };
    let timeouts = Timeouts {
        params: Duration::from_millis(500),
        body_idle: Duration::from_millis(700),
        keepalive_idle: Duration::from_millis(900),
        drain_linger: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let mut now = Instant::now();
    let mut engine = FastCgiEngine::new(limits, timeouts, now);
    let mut keys = Vec::new();
    let mut peer = RecordDecoder::new();
    let mut received = BytesMut::new();
    for step in steps {
        match step {
            Step::Input(data) => {
                if engine.wants_read() {
                    let _ = engine.handle_input(&data, now);
                }
            }
            Step::Respond {
                which,
                status,
                body,
            } if !keys.is_empty() => {
                let key = keys[usize::from(which) % keys.len()];
                let status = StatusCode::from_u16(100 + status % 500).unwrap();
                let _ = engine.send_head(key, status, &HeaderMap::new(), now);
                if engine.poll_produce(key, now) {
                    let _ = engine.send_body(key, &vec![b'x'; usize::from(body)], now);
                }
                let _ = engine.finish(key, 0, now);
            }
            Step::ReadBody { which } if !keys.is_empty() => {
                let key = keys[usize::from(which) % keys.len()];
                let _ = engine.poll_body(key, InputStream::Body, now);
                let _ = engine.poll_body(key, InputStream::FilterData, now);
            }
            Step::Abort { which } if !keys.is_empty() => {
                let key = keys[usize::from(which) % keys.len()];
                let _ = engine.abort(key, AbortCause::HandlerError, now);
            }
            Step::Stderr { which } if !keys.is_empty() => {
                let key = keys[usize::from(which) % keys.len()];
                let _ = engine.send_stderr(key, b"err");
            }
            Step::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis));
                if engine.poll_timeout().is_some_and(|d| d <= now) {
                    engine.handle_timeout(now);
                }
            }
            Step::Flush => {
                while let Some(out) = engine.take_output() {
                    received.extend_from_slice(&out);
                    engine.handle_sent(out.len(), now);
                }
            }
            Step::ReadClosed => engine.handle_read_closed(now),
            Step::WriteFailed => engine.handle_write_failed(now),
            Step::Drain => engine.drain(now),
            _ => {}
        }
        while let Some(event) = engine.poll_event() {
            if let Event::Request(r) = event {
                keys.push(r.key);
            }
        }
        // The peer can always parse what the engine sent.
        while let Some(r) = peer
            .decode(&mut received)
            .expect("engine output is a record stream")
        {
            assert!(r.content.len() <= 65535);
        }
        assert!(
            engine.in_flight() <= 8,
            "more requests than max_requests_per_connection"
        );
        // Input is decoded only below the send-queue mark, so whatever the peer asks for, the
        // queue exceeds the mark by at most one step's output (a response body of at most
        // 64 KiB, or the replies to one read's records).
        assert!(
            engine.queued_output() <= 8192 + 65536 + 8 * 1024,
            "send queue unbounded: {}",
            engine.queued_output()
        );
    }
});
