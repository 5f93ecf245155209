//! The SCGI client: one task per connection slot, one request per connection (SCGI has
//! neither keep-alive nor multiplexing). The response is read until the server closes.

use std::io;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::Interest;

use crate::fastcgi_client::READ_CHUNK;
use crate::request::Behaviour;
use crate::response::ResponseReader;
use crate::schedule::Ticket;
use crate::stats::{ErrorKind, Outcome};
use crate::thread::Worker;

/// Runs one connection slot until the worker's dispenser has no more tickets.
pub async fn run(w: Rc<Worker>) {
    let mut reader = ResponseReader::new(w.plan.max_head_bytes);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    while let Some(t) = w.dispenser.next(Instant::now()) {
        tokio::time::sleep_until(t.due().into()).await;
        let sent = Instant::now();
        let from = t.latency_origin(sent, w.open_loop());
        let deadline = sent + w.plan.timeout;
        let outcome = tokio::time::timeout_at(
            deadline.into(),
            exchange(&w, &t, from, deadline, &mut reader, &mut rbuf),
        )
        .await
        .unwrap_or(Outcome::Error(ErrorKind::Timeout));
        w.stats
            .borrow_mut()
            .finish(t.recorded, outcome, &w.progress);
    }
}

/// Connects, sends the request and reads the response to the end of the stream.
async fn exchange(
    w: &Worker,
    t: &Ticket,
    from: Instant,
    deadline: Instant,
    reader: &mut ResponseReader,
    rbuf: &mut BytesMut,
) -> Outcome {
    let spec = &w.plan.scenario.specs[t.spec];
    let connect = tokio::time::timeout_at(deadline.into(), w.target.connect()).await;
    let Ok(Ok(mut s)) = connect else {
        return Outcome::Error(ErrorKind::Connect);
    };
    w.stats.borrow_mut().connections += 1;
    let req = &w.scgi[t.spec];
    if s.write_all(req).await.is_err() {
        return Outcome::Error(ErrorKind::Io);
    }
    if w.measuring(Instant::now()) {
        w.stats.borrow_mut().bytes_out += req.len() as u64;
    }
    if spec.behaviour == Behaviour::HalfClose {
        if s.shutdown_write().await.is_err() {
            return Outcome::Error(ErrorKind::Io);
        }
        if t.recorded {
            w.stats.borrow_mut().scenario.half_closes += 1;
        }
    }
    reader.start(spec.method.eq_ignore_ascii_case("HEAD"));
    let mut paused = false;
    loop {
        rbuf.clear();
        rbuf.reserve(READ_CHUNK);
        if s.ready(Interest::READABLE).await.is_err() {
            return Outcome::Error(ErrorKind::Io);
        }
        let n = match s.try_read_buf(rbuf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Outcome::Error(ErrorKind::Io),
        };
        if w.measuring(Instant::now()) {
            w.stats.borrow_mut().bytes_in += n as u64;
        }
        reader.feed(&rbuf[..n], spec.expect.as_ref());
        match spec.behaviour {
            Behaviour::Disconnect => return Outcome::Disconnected,
            Behaviour::SlowReader { pause } if !paused => {
                paused = true;
                if t.recorded {
                    w.stats.borrow_mut().scenario.reader_pauses += 1;
                }
                tokio::time::sleep(pause).await;
            }
            _ => {}
        }
    }
    match reader.finish(spec.expect.as_ref(), true) {
        Ok(status) => {
            if t.recorded {
                w.stats.borrow_mut().body_bytes += reader.body_len();
            }
            Outcome::Ok {
                status,
                latency: Instant::now().saturating_duration_since(from),
            }
        }
        Err(kind) => Outcome::Error(kind),
    }
}
