//! Responses the engines write themselves, when a request cannot reach the application or
//! the application cannot answer: a CGI response head plus a one-line text body.

use bytes::BytesMut;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use crate::proto::cgi::encode_response_head;

/// Writes the whole CGI response (head and body) for `status` into `out`.
pub(crate) fn write(out: &mut BytesMut, status: StatusCode) {
    let body = status.canonical_reason().unwrap_or("Error");
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() + 1));
    encode_response_head(out, status, &headers);
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b"\n");
}

/// The status an engine answers with when a request is cut short by `cause` before its head.
pub(crate) fn status_for(cause: super::AbortCause) -> StatusCode {
    match cause {
        super::AbortCause::Timeout => StatusCode::GATEWAY_TIMEOUT,
        super::AbortCause::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
