//! The HTTP endpoint of the metrics thread: GET `/metrics` (the Prometheus exposition) and
//! GET `/health` (`OK`, or `503 draining` once the server drains: for load balancers and
//! Kubernetes readiness probes), served with hyper on the
//! `ringgate-metrics` thread, never on a worker.
//!
//! It is exposed to whatever can reach the metrics address, so it defends itself: at most
//! [`MAX_CLIENTS`] connections at once (more are closed at once and counted as the limit
//! `metrics_clients`), one request per connection, a deadline on every connection
//! ([`CLIENT_TIMEOUT`]: idle or slow clients are cut), a pause after an `accept` that failed
//! for lack of descriptors or memory (the exporter's own listener retried at once and spun),
//! and at most one log line per cause per 10 s (the crate's rate-limited log).

use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::counter;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::export::MetricsHandle;
use super::names::LIMIT_HITS_TOTAL;
use crate::channel::Limit;
use crate::rate_limited_log::RateLimitedLog;

/// Connections served at once; more are closed right after `accept`.
pub const MAX_CLIENTS: usize = 64;
/// Longest life of one connection: reading the request, rendering, and sending the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request head after the connection opened.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause after `accept` failed for lack of resources; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between `accept` attempts while resources are exhausted.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Set once the process starts draining: `/health` then answers 503, so load balancers and
/// readiness probes stop sending new work while in-flight requests finish.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Makes `/health` answer `503 draining` from now on (the server calls it when it begins to
/// drain).
pub fn set_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// Whether an `accept` error means the process (or system) ran out of something, so that
/// retrying at once would only spin.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves `/metrics` and `/health` on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, handle: MetricsHandle) {
    let handle = Rc::new(handle);
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut backoff = MIN_BACKOFF;
    let mut exhausted_log = RateLimitedLog::default();
    let mut full_log = RateLimitedLog::default();
    let mut error_log = RateLimitedLog::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = MIN_BACKOFF;
                stream
            }
            Err(e) if is_resource_exhaustion(&e) => {
                if let Some(suppressed) = exhausted_log.allow(Instant::now()) {
                    tracing::warn!(error = %e, suppressed, pause = ?backoff, "metrics: accept failed; pausing");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => {
                // A connection that died in the backlog (ECONNABORTED, say): the next one is fine.
                if let Some(suppressed) = error_log.allow(Instant::now()) {
                    tracing::debug!(error = %e, suppressed, "metrics: accept failed");
                }
                continue;
            }
        };
        let Ok(permit) = clients.clone().try_acquire_owned() else {
            counter!(LIMIT_HITS_TOTAL, "limit" => Limit::MetricsClients.as_str()).increment(1);
            if let Some(suppressed) = full_log.allow(Instant::now()) {
                tracing::warn!(
                    max = MAX_CLIENTS,
                    suppressed,
                    "metrics: too many clients; closing new connections"
                );
            }
            continue; // Dropping the stream closes it.
        };
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| answer(req, handle.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            // Past the deadline the connection is dropped, which closes it.
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, conn).await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    handle: Rc<MetricsHandle>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics" | "/") => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            Bytes::from(handle.render()),
        ),
        (&Method::GET | &Method::HEAD, "/health") if DRAINING.load(Ordering::Relaxed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"draining"),
        ),
        (&Method::GET | &Method::HEAD, "/health") => {
            (StatusCode::OK, "text/plain", Bytes::from_static(b"OK"))
        }
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: try /metrics or /health\n"),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed\n"),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resource_errors_pause_the_accept_loop() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
