//! CGI/1.1 (RFC 3875): meta-variables ([`CgiVars`]), the request head they describe
//! (twisted.web2's `makeRequest`), and CGI response heads (`Status:` + headers + blank line).

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// Default limit on the number of `HTTP_*` variables turned into headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// CGI meta-variables in arrival order. Lookups are linear: a request has a few dozen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgiVars {
    pairs: Vec<(Bytes, Bytes)>,
}

impl CgiVars {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a variable (the decoders check uniqueness where the protocol demands it).
    pub fn push(&mut self, name: Bytes, value: Bytes) {
        self.pairs.push((name, value));
    }

    /// The value of the first variable called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    /// The value of `name` if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All variables in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The request the variables describe.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// `REQUEST_METHOD`.
    pub method: Method,
    /// `REQUEST_URI`, or `SCRIPT_NAME` + `PATH_INFO` + `?QUERY_STRING`.
    pub uri: Uri,
    /// `SERVER_PROTOCOL` (HTTP/1.1 when absent).
    pub version: Version,
    /// `HTTP_*` (with `_` turned into `-`), `CONTENT_TYPE` and `CONTENT_LENGTH`.
    pub headers: HeaderMap,
    /// `CONTENT_LENGTH`; an empty value (nginx sends one for GET) is `Some(0)`.
    pub content_length: Option<u64>,
    /// `HTTPS` is `on` or `1`.
    pub secure: bool,
    /// `SERVER_NAME`.
    pub server_name: Option<String>,
    /// `SERVER_ADDR`.
    pub server_addr: Option<IpAddr>,
    /// `SERVER_PORT`.
    pub server_port: Option<u16>,
    /// `REMOTE_ADDR`.
    pub remote_addr: Option<IpAddr>,
    /// `REMOTE_PORT`.
    pub remote_port: Option<u16>,
}

/// Why the variables do not describe a valid request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CgiError {
    /// `REQUEST_METHOD` is missing.
    #[error("REQUEST_METHOD missing")]
    MissingMethod,
    /// `REQUEST_METHOD` is not a valid token.
    #[error("bad REQUEST_METHOD")]
    BadMethod,
    /// `SERVER_PROTOCOL` is not HTTP/0.9, 1.0, 1.1, 2 or 3.
    #[error("bad SERVER_PROTOCOL {0:?}")]
    BadProtocol(String),
    /// The URI cannot be parsed.
    #[error("bad request URI")]
    BadUri,
    /// A header name or value is invalid.
    #[error("bad header {0}")]
    BadHeader(String),
    /// `CONTENT_LENGTH` is not a decimal number.
    #[error("bad CONTENT_LENGTH")]
    BadContentLength,
    /// More `HTTP_*` variables than the limit.
    #[error("more than {limit} headers")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
}

/// Turns CGI variables into a request head (the seed's `makeRequest`).
pub fn parse_request(vars: &CgiVars, max_headers: usize) -> Result<RequestHead, CgiError> {
    let _ = (vars, max_headers);
    todo!("helper: proto")
}

/// Writes `Status: NNN Reason\r\n`, the headers and the blank line.
pub fn encode_response_head(out: &mut BytesMut, status: StatusCode, headers: &HeaderMap) {
    let _ = (out, status, headers);
    todo!("helper: proto")
}

/// A parsed CGI response head (client side, and the CGI-script executor).
#[derive(Clone, Debug)]
pub struct ResponseHead {
    /// From `Status:`; 302 for a client redirect without one; 200 otherwise.
    pub status: StatusCode,
    /// The other header lines.
    pub headers: HeaderMap,
}

/// Why a CGI response head is invalid.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ResponseHeadError {
    /// The head exceeds the size limit without a blank line.
    #[error("response head exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A line is not `Name: value`, or the status is not a 3-digit code.
    #[error("malformed response head")]
    Malformed,
}

/// Parses a CGI response head from the front of `buf`: `Ok(Some((head, consumed)))` once the
/// blank line (`\r\n\r\n` or `\n\n`) is there, `Ok(None)` if more bytes are needed.
pub fn parse_response_head(
    buf: &[u8],
    max_bytes: usize,
) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
    let _ = (buf, max_bytes);
    todo!("helper: proto")
}
