//! The built-in demo application that every test and benchmark drives. Routes are matched on
//! `PATH_INFO` when it is set (a CGI script alias), else on the request path:
//!
//! | route | answer |
//! |---|---|
//! | `GET /hello` | 200 `Hello, world!\n` |
//! | `POST /echo` | 200, the request body byte for byte, streamed |
//! | `GET /stream?chunks=N&size=S&delay_ms=D` | N chunks of S bytes, D ms apart; chunk k is filled with `b'a' + k % 26` (yielded in frames of at most [`MAX_RESPONSE_FRAME`] bytes) |
//! | `GET /status/NNN` | a response with that status |
//! | `GET /slow?ms=M` | answers after M ms (dropped, so cancelled, on abort) |
//! | `GET /env` | the CGI variables, one `NAME=value` line each |
//! | `GET /echo-env?name=VAR` | the value of VAR alone, 404 if absent |

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::Frame;

use super::{
    boxed, text, Body, BoxError, CgiVars, Handler, RequestInfo, ResponseBody, MAX_RESPONSE_FRAME,
};

/// Largest `chunks * size` `/stream` will produce (1 GiB), so one request cannot run forever.
pub const MAX_STREAM_BYTES: u64 = 1 << 30;
/// Largest chunk `/stream` will produce (16 MiB). A chunk is the unit of `delay_ms` and of the
/// fill byte; it is yielded in frames of at most [`MAX_RESPONSE_FRAME`] bytes, so that a reader
/// that stalls holds one frame, not a whole chunk.
pub const MAX_STREAM_CHUNK: usize = 16 << 20;
/// Longest `/slow` and `/stream` delay (10 minutes).
pub const MAX_DELAY_MS: u64 = 600_000;

/// The demo application.
#[derive(Clone, Copy, Debug, Default)]
pub struct Demo;

impl Handler for Demo {
    async fn call(&self, request: http::Request<Body>) -> Result<Response<ResponseBody>, BoxError> {
        let query = request.uri().query().unwrap_or("");
        Ok(match (request.method(), route(&request)) {
            (&Method::GET | &Method::HEAD, Route::Hello) => text(StatusCode::OK, HELLO),
            (&Method::POST | &Method::PUT, Route::Echo) => echo(request),
            (&Method::GET, Route::Stream) => stream(query),
            (&Method::GET, Route::Slow) => {
                let ms = param(query, "ms").unwrap_or(0).min(MAX_DELAY_MS);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms} ms\n"))
            }
            (&Method::GET, Route::Env) => env(vars(&request)),
            (&Method::GET, Route::EchoEnv) => echo_env(vars(&request), query),
            (_, Route::Status(code)) => status(code),
            (_, Route::NotFound) => text(StatusCode::NOT_FOUND, "not found\n"),
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        })
    }
}

const HELLO: &str = "Hello, world!\n";

/// The demo's routes.
#[derive(Clone, Copy)]
enum Route<'a> {
    Hello,
    Echo,
    Stream,
    Slow,
    Env,
    EchoEnv,
    /// `/status/NNN`, with the status as written.
    Status(&'a str),
    NotFound,
}

/// The route of a request. Behind a script prefix (a CGI alias, SCRIPT_NAME=/app) it is
/// PATH_INFO; otherwise (nginx, HAProxy) it is the request path.
fn route(request: &http::Request<Body>) -> Route<'_> {
    let path_info = vars(request)
        .and_then(|v| v.get_str("PATH_INFO"))
        .filter(|p| !p.is_empty());
    match path_info.unwrap_or_else(|| request.uri().path()) {
        "/hello" => Route::Hello,
        "/echo" => Route::Echo,
        "/stream" => Route::Stream,
        "/slow" => Route::Slow,
        "/env" => Route::Env,
        "/echo-env" => Route::EchoEnv,
        p => p
            .strip_prefix("/status/")
            .map_or(Route::NotFound, Route::Status),
    }
}

/// The request's CGI variables.
fn vars(request: &http::Request<Body>) -> Option<&CgiVars> {
    request.extensions().get::<RequestInfo>().map(|i| &i.vars)
}

fn param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn echo(request: http::Request<Body>) -> Response<ResponseBody> {
    let length = request.headers().get(http::header::CONTENT_LENGTH).cloned();
    let body = boxed(request.into_body());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(length) = length {
        headers.insert(http::header::CONTENT_LENGTH, length);
    }
    response
}

fn stream(query: &str) -> Response<ResponseBody> {
    let chunks = param(query, "chunks").unwrap_or(1);
    let size = param(query, "size").unwrap_or(1024);
    let delay = param(query, "delay_ms").unwrap_or(0).min(MAX_DELAY_MS);
    let total = chunks.checked_mul(size);
    if total.is_none_or(|t| t > MAX_STREAM_BYTES) || size > MAX_STREAM_CHUNK as u64 {
        return text(StatusCode::BAD_REQUEST, "stream too large\n");
    }
    let body = Chunks {
        next: 0,
        chunks,
        // Checked against MAX_STREAM_CHUNK just above.
        size: size as usize,
        left: 0,
        delay: Duration::from_millis(delay),
        sleep: None,
    };
    let mut response = Response::new(boxed(body));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(chunks * size),
    );
    response
}

/// `/stream`'s body: chunk k is `size` bytes of `b'a' + k % 26`, in frames of at most
/// [`MAX_RESPONSE_FRAME`] bytes.
struct Chunks {
    /// Chunks started so far.
    next: u64,
    chunks: u64,
    size: usize,
    /// Bytes of the current chunk not yielded yet.
    left: usize,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            // The next chunk.
            if self.next >= self.chunks {
                return Poll::Ready(None);
            }
            if self.next > 0 && !self.delay.is_zero() {
                let delay = self.delay;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            self.next += 1;
            self.left = self.size;
        }
        let frame = self.left.min(MAX_RESPONSE_FRAME);
        self.left -= frame;
        // (k - 1) % 26 < 26 for the chunk k - 1 under way, so the cast cannot truncate.
        let fill = b'a' + ((self.next - 1) % 26) as u8;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![fill; frame])))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks && self.left == 0
    }
}

use std::future::Future as _;

fn status(code: &str) -> Response<ResponseBody> {
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
        _ => text(StatusCode::BAD_REQUEST, "bad status\n"),
    }
}

fn env(vars: Option<&CgiVars>) -> Response<ResponseBody> {
    let mut out = Vec::new();
    for (name, value) in vars.into_iter().flat_map(CgiVars::iter) {
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    text(StatusCode::OK, out)
}

fn echo_env(vars: Option<&CgiVars>, query: &str) -> Response<ResponseBody> {
    let name = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "name")
        .map(|(_, v)| v);
    match (vars, name) {
        (Some(vars), Some(name)) => match vars.get(name) {
            Some(value) => text(StatusCode::OK, Bytes::copy_from_slice(value)),
            None => text(StatusCode::NOT_FOUND, "no such variable\n"),
        },
        _ => text(StatusCode::BAD_REQUEST, "name= missing\n"),
    }
}
