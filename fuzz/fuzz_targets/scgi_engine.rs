//! The SCGI engine driven by an arbitrary peer: arbitrary bytes in arbitrary reads, the
//! application answering or aborting, the clock jumping, half-close and write failure.
//! Nothing may panic, and a closed connection stays closed.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use ringgate::channel::{AbortCause, Channel, Event, InputStream, Limits, StreamEngine, Timeouts};

#[derive(Arbitrary, Debug)]
enum Step {
    Input(Vec<u8>),
    Respond { status: u16, body: u16 },
    ReadBody,
    Abort,
    Advance { millis: u16 },
    Flush,
    ReadClosed,
    WriteFailed,
}

fuzz_target!(|steps: Vec<Step>| {
    let limits = Limits {
        max_scgi_header_bytes: 1024,
        max_body_buffer_bytes: 4096,
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
    let mut engine = StreamEngine::scgi(limits, timeouts, now);
    let mut key = None;
    let mut sent = 0usize;
    for step in steps {
        let closed_before = engine.close_reason().is_some();
        match step {
            Step::Input(data) => {
                let _ = engine.handle_input(&data, now);
            }
            Step::Respond { status, body } => {
                if let Some(k) = key {
                    let status = StatusCode::from_u16(100 + status % 500).unwrap();
                    let _ = engine.send_head(k, status, &HeaderMap::new(), now);
                    let _ = engine.send_body(k, &vec![b'y'; usize::from(body)], now);
                    let _ = engine.finish(k, 0, now);
                }
            }
            Step::ReadBody => {
                if let Some(k) = key {
                    let _ = engine.poll_body(k, InputStream::Body, now);
                }
            }
            Step::Abort => {
                if let Some(k) = key {
                    let _ = engine.abort(k, AbortCause::HandlerError, now);
                }
            }
            Step::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis));
                if engine.poll_timeout().is_some_and(|d| d <= now) {
                    engine.handle_timeout(now);
                }
            }
            Step::Flush => {
                while let Some(out) = engine.take_output() {
                    sent += out.len();
                    engine.handle_sent(out.len(), now);
                }
            }
            Step::ReadClosed => engine.handle_read_closed(now),
            Step::WriteFailed => engine.handle_write_failed(now),
        }
        while let Some(event) = engine.poll_event() {
            if let Event::Request(r) = event {
                assert!(key.is_none(), "two requests on one SCGI connection");
                key = Some(r.key);
            }
        }
        if closed_before {
            assert!(
                engine.close_reason().is_some(),
                "a closed connection reopened"
            );
        }
    }
    let _ = sent;
});
