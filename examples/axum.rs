//! An axum application served by ringgate through the tower adapter (cargo feature `tower`):
//! the built-in demo's routes, answered the same way, plus a JSON route with a path
//! parameter. It has the command line every ringgate program has (metrics only when asked for,
//! with `--metrics ADDR`, so that it can run beside a ringgate), and needs no crate beyond
//! ringgate and axum but for `serde_json` (its JSON route) and `futures-util` (its stream and
//! the `DemoCompat` wrapper):
//!
//! `cargo run --release --example axum --features tower -- --fastcgi 127.0.0.1:9000 --workers 2`
//!
//! | route | answer |
//! |---|---|
//! | `GET /hello` | 200 `Hello, world!\n` |
//! | `POST /echo` | 200, the request body, streamed back as it arrives |
//! | `GET /stream?chunks=N&size=S&delay_ms=D` | N chunks of S bytes, D ms apart; chunk k is filled with `b'a' + k % 26` |
//! | `GET /status/NNN` | a response with that status |
//! | `GET /slow?ms=M` | answers after M ms (cancelled when the request is aborted) |
//! | `GET /users/{id}` | `{"id":ID}` as JSON |

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures_util::future::{ready, Either, Ready};
use ringgate::app::demo::{MAX_DELAY_MS, MAX_STREAM_BYTES, MAX_STREAM_CHUNK};
use ringgate::app::tower::SendBody;
use ringgate::app::RequestInfo;
use ringgate::bytes::Bytes;
use ringgate::settings::MetricsSetting;
use ringgate::tower_service::Service;
use ringgate::{http, Program, Settings};

fn app() -> Router {
    Router::new()
        .route("/hello", get(hello).fallback(method_not_allowed))
        .route("/echo", post(echo).put(echo).fallback(method_not_allowed))
        .route("/stream", get(stream).fallback(method_not_allowed))
        .route("/slow", get(slow).fallback(method_not_allowed))
        .route("/status/", any(|| async { bad_status() }))
        .route("/status/{*code}", any(status))
        .route("/users/{id}", get(user))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n") })
}

async fn hello() -> Response {
    text(StatusCode::OK, "Hello, world!\n")
}

/// The request body, streamed back: each chunk goes out as it arrives. The response has a
/// `Content-Length` when the request had one: ringgate derives it from the body's size hint.
async fn echo(request: Request) -> Response {
    let mut response = Response::new(request.into_body());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

async fn stream(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let chunks = param(&query, "chunks").unwrap_or(1);
    let size = param(&query, "size").unwrap_or(1024);
    let delay = Duration::from_millis(param(&query, "delay_ms").unwrap_or(0).min(MAX_DELAY_MS));
    let total = chunks.checked_mul(size);
    if total.is_none_or(|t| t > MAX_STREAM_BYTES) || size > MAX_STREAM_CHUNK as u64 {
        return text(StatusCode::BAD_REQUEST, "stream too large\n");
    }
    // Checked against MAX_STREAM_CHUNK just above.
    let size = size as usize;
    let body = futures_util::stream::unfold(0u64, move |k| async move {
        if k >= chunks {
            return None;
        }
        if k > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // k % 26 < 26, so the cast cannot truncate.
        let fill = b'a' + (k % 26) as u8;
        Some((Ok::<_, Infallible>(Bytes::from(vec![fill; size])), k + 1))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(chunks * size as u64),
    );
    response
}

/// Dropped with its sleep when the request is aborted.
async fn slow(RawQuery(query): RawQuery) -> Response {
    let ms = param(&query.unwrap_or_default(), "ms")
        .unwrap_or(0)
        .min(MAX_DELAY_MS);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    text(StatusCode::OK, format!("slept {ms} ms\n"))
}

async fn status(Path(code): Path<String>) -> Response {
    match code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(status) if status.as_u16() >= 200 => text(
            status,
            format!(
                "{} {}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        ),
        _ => bad_status(),
    }
}

fn bad_status() -> Response {
    text(StatusCode::BAD_REQUEST, "bad status\n")
}

async fn user(Path(id): Path<u64>) -> impl IntoResponse {
    Json(serde_json::json!({ "id": id }))
}

async fn method_not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
}

/// A plain-text response with the headers the built-in demo sends.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let body: Bytes = body.into();
    let length = body.len();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The value of `name` in a query string, as the demo reads it (absent or not a number:
/// `None`).
fn param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

/// What the built-in demo does around its routes, so that this app answers every request the
/// same way: routes on `PATH_INFO` when the front end sets it (a script prefix such as
/// `SCRIPT_NAME=/app`), else on the request path; and answers `HEAD` like `GET`, body
/// included (axum would drop the body; front ends drop it themselves), where the demo allows
/// it, and 405 on its `POST`/`GET`-only routes.
#[derive(Clone)]
struct DemoCompat(Router);

type RouterFuture = <Router as Service<http::Request<SendBody>>>::Future;

impl Service<http::Request<SendBody>> for DemoCompat {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, RouterFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<SendBody>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, mut request: http::Request<SendBody>) -> Self::Future {
        let path_info = request
            .extensions()
            .get::<RequestInfo>()
            .and_then(|i| i.vars.get_str("PATH_INFO"))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        if let Some(path) = path_info {
            let target = match request.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            if let Ok(uri) = target.parse() {
                *request.uri_mut() = uri;
            }
        }
        if request.method() == http::Method::HEAD {
            if matches!(request.uri().path(), "/echo" | "/stream" | "/slow") {
                return Either::Left(ready(Ok(text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed\n",
                ))));
            }
            *request.method_mut() = http::Method::GET;
        }
        Either::Right(self.0.call(request))
    }
}

fn main() -> std::process::ExitCode {
    let program = Program::new("axum", env!("CARGO_PKG_VERSION"))
        .about("The ringgate demo's routes as an axum application")
        .defaults(Settings {
            metrics: MetricsSetting::Off,
            ..Settings::default()
        });
    let settings = program.settings_or_exit();
    ringgate::init_logging();
    let app = ringgate::app::tower::service(DemoCompat(app()));
    let server = program
        .server(settings, app)
        .application("axum example (/hello, /echo, /stream, /status/NNN, /slow, /users/{id})");
    program.exit_code(server.run())
}
