//! The application side: the [`Handler`] trait, the request and response types handlers
//! see, and the built-in applications ([`demo`], [`cgi_exec`]). With the cargo feature `tower`, `tower`
//! serves any `tower::Service` (an axum `Router`, ...) as a handler.
//!
//! A request is an `http::Request<Body>` whose extensions carry a [`RequestInfo`]: the raw
//! [`CgiVars`] (which also answer for the server and remote address and https), the FastCGI
//! [`Role`] and, for the FILTER role, the [`FilterInfo`]; the FILTER role's DATA stream comes
//! with the body ([`Body::take_filter_data`]); a handler that asks for it also gets a
//! [`Peer`]. A response is an `http::Response<ResponseBody>` with a full or streaming
//! `http-body` 1.x body. Handlers run one instance per core and may be `!Send`.

mod body;
pub mod cgi_exec;
pub mod demo;
mod peer;
#[cfg(feature = "tower")]
pub mod tower;

use std::future::Future;

use bytes::Bytes;
use http_body_util::BodyExt;

pub use crate::channel::{FilterInfo, Protocol};
pub use crate::proto::cgi::CgiVars;
pub use crate::proto::fastcgi::Role;
pub use body::{Body, BodyError, BodySource};
pub use peer::{Peer, StderrError, STDERR_QUEUE_BYTES};

/// Errors a handler or a response body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest response body frame the runtime queues in one piece (one full FastCGI record's
/// content, rounded up). A larger frame is queued this many bytes at a time, each slice only
/// while the connection's send queue is under its mark, but its memory stays allocated until
/// its last slice is queued (a `Bytes` frees its buffer only when no part of it is left): a
/// reader that stalls keeps a handler's whole frame. Yield frames of at most this size to keep
/// a connection within the README's worst case ("Hostile clients"); the demo and the CGI
/// executor do.
pub const MAX_RESPONSE_FRAME: usize = 64 * 1024;

/// A response body: full or streaming, possibly `!Send`.
pub type ResponseBody = std::pin::Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError>>>;

/// Boxes any body whose errors convert into [`BoxError`] as a [`ResponseBody`].
pub fn boxed<B>(body: B) -> ResponseBody
where
    B: http_body::Body<Data = Bytes> + 'static,
    B::Error: Into<BoxError>,
{
    Box::pin(body.map_err(Into::into))
}

/// An application. One instance per worker thread (made by a [`HandlerFactory`]), so it may
/// keep `!Send` state. A returned `Err` or a panic becomes a 500 when nothing was sent yet,
/// otherwise an aborted request; other requests on the connection are not affected.
pub trait Handler: 'static {
    /// Answers one request. The future is dropped if the request is aborted.
    fn call(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<ResponseBody>, BoxError>>;

    /// Whether each request should carry a [`Peer`] in its extensions (error output to the
    /// front end, word of its closing). Off by default: it costs an allocation per request.
    fn uses_peer(&self) -> bool {
        false
    }
}

/// Makes one [`Handler`] per worker thread.
pub trait HandlerFactory: Send + Sync + 'static {
    /// The handler type.
    type Handler: Handler;
    /// Builds the handler for worker `worker`.
    fn make(&self, worker: usize) -> Self::Handler;
}

impl<F, H> HandlerFactory for F
where
    F: Fn(usize) -> H + Send + Sync + 'static,
    H: Handler,
{
    type Handler = H;
    fn make(&self, worker: usize) -> H {
        self(worker)
    }
}

/// What the front end told about a request beyond its HTTP head: the raw CGI variables, the
/// FastCGI role, where the request came from and went to. Every request carries one, as its
/// only extension (`req.extensions().get::<RequestInfo>()`): one lookup for a handler and
/// one allocation for the server, where an extension for each had cost four.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The wire protocol.
    pub protocol: Option<Protocol>,
    /// The FastCGI role (RESPONDER for SCGI and CGI).
    pub role: Role,
    /// For the FILTER role, what it says of its DATA stream (which comes with the body,
    /// [`Body::take_filter_data`]).
    pub filter: Option<FilterInfo>,
    /// The raw CGI variables, in arrival order. Where the request came from and went to is
    /// read from them on demand: [`CgiVars::remote_addr`], [`CgiVars::secure`] and the like.
    pub vars: CgiVars,
}

/// Builds the request a handler sees from what an engine announced.
pub fn build_request(
    new: crate::channel::NewRequest,
    body: Body,
    filter_data: Option<Body>,
) -> http::Request<Body> {
    let head = new.head;
    let mut body = body;
    if let Some(data) = filter_data {
        body.set_filter_data(data);
    }
    let mut request = http::Request::new(body);
    *request.method_mut() = head.method;
    *request.uri_mut() = head.uri;
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers;
    request.extensions_mut().insert(RequestInfo {
        protocol: Some(new.protocol),
        role: new.role,
        filter: new.filter,
        vars: new.vars,
    });
    request
}

/// The FastCGI END_REQUEST appStatus of a response (0 without this extension): put one in
/// the response's extensions and set it before the body ends (the CGI executor sends the
/// script's exit status this way).
#[derive(Clone, Debug, Default)]
pub struct AppStatus(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl AppStatus {
    /// The status now.
    pub fn get(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the status.
    pub fn set(&self, status: u32) {
        self.0.store(status, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Gives a response whose body knows its exact size (`size_hint().exact()`: [`full`],
/// [`empty`], `http_body_util::Full`, axum's bodies from bytes or strings) a `Content-Length`
/// header, as hyper does, so that the front end need not re-chunk it. The handler's own
/// header is kept, and none is added where the response must not have one (1xx, 204, 304, or
/// with a `Transfer-Encoding`) nor to the answer to a HEAD request (its body is no measure
/// of the GET's). The server applies this to every response, once, before its head is
/// encoded.
pub(crate) fn set_content_length(response: &mut http::Response<ResponseBody>, head_request: bool) {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let status = response.status();
    if head_request
        || status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
        || response.headers().contains_key(CONTENT_LENGTH)
        || response.headers().contains_key(TRANSFER_ENCODING)
    {
        return;
    }
    if let Some(length) = response.body().size_hint().exact() {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from(length));
    }
}

/// A complete response body.
pub fn full(data: impl Into<Bytes>) -> ResponseBody {
    boxed(http_body_util::Full::new(data.into()))
}

/// An empty response body.
pub fn empty() -> ResponseBody {
    boxed(http_body_util::Empty::<Bytes>::new())
}

/// A plain-text response with `status`.
pub fn text(status: http::StatusCode, body: impl Into<Bytes>) -> http::Response<ResponseBody> {
    let body = body.into();
    let mut response = http::Response::new(full(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(body.len()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: ResponseBody) -> http::Response<ResponseBody> {
        let mut r = http::Response::new(body);
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    }

    fn length(r: &http::Response<ResponseBody>) -> Option<&str> {
        r.headers()
            .get(http::header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn an_exact_size_hint_gives_a_content_length() {
        let mut r = response(200, full("12345"));
        set_content_length(&mut r, false);
        assert_eq!(length(&r), Some("5"));
        let mut r = response(200, empty());
        set_content_length(&mut r, false);
        assert_eq!(length(&r), Some("0"));
        let mut r = response(
            404,
            boxed(http_body_util::Full::new(Bytes::from(vec![0; 70_000]))),
        );
        set_content_length(&mut r, false);
        assert_eq!(length(&r), Some("70000"));
    }

    #[test]
    fn no_content_length_without_an_exact_hint_or_where_forbidden() {
        // A streaming body: no exact size.
        let (_tx, channel) = http_body_util::channel::Channel::<Bytes, BoxError>::new(1);
        let mut r = response(200, boxed(channel));
        set_content_length(&mut r, false);
        assert_eq!(length(&r), None);
        for status in [204, 304] {
            let mut r = response(status, empty());
            set_content_length(&mut r, false);
            assert_eq!(length(&r), None, "{status}");
        }
        // HEAD: the handler's own header or none.
        let mut r = response(200, empty());
        set_content_length(&mut r, true);
        assert_eq!(length(&r), None);
        let mut r = text(http::StatusCode::OK, "abc");
        set_content_length(&mut r, true);
        assert_eq!(length(&r), Some("3"));
        let mut r = response(200, full("abc"));
        r.headers_mut().insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
        set_content_length(&mut r, false);
        assert_eq!(length(&r), None);
    }

    #[test]
    fn the_handlers_own_content_length_is_kept() {
        let mut r = response(200, full("abc"));
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(99));
        set_content_length(&mut r, false);
        assert_eq!(length(&r), Some("99"));
        assert_eq!(
            r.headers()
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .count(),
            1
        );
    }
}
