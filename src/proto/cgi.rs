//! CGI/1.1 (RFC 3875): meta-variables ([`CgiVars`]), the request head they describe
//! (twisted.web2's `makeRequest`), and CGI response heads (`Status:` + headers + blank line).

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// Default limit on the number of `HTTP_*` variables turned into headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Default limit on the size of a CGI response head, blank line included.
pub const DEFAULT_MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

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
///
/// - `REQUEST_METHOD` is required.
/// - The URI is `REQUEST_URI` when present and non-empty (origin form, absolute form or `*`);
///   a `REQUEST_URI` in origin form with bytes `http::Uri` refuses (spaces, raw non-ASCII from
///   some front ends) has those bytes percent-encoded rather than being refused. Without it the
///   URI is rebuilt from `SCRIPT_NAME` + `PATH_INFO` (which CGI passes decoded, so everything
///   but unreserved characters, sub-delimiters, `:`, `@` and `/` is percent-encoded), then
///   `?QUERY_STRING` when that is non-empty; an empty path becomes `/`.
/// - `SERVER_PROTOCOL`: `HTTP/0.9`, `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/2.0`, `HTTP/3`;
///   HTTP/1.1 when absent.
/// - `HTTP_*` become headers (`HTTP_` stripped, `_` turned into `-`, lower case); at most
///   `max_headers` of them. `CONTENT_TYPE` (when non-empty) and `CONTENT_LENGTH` (when
///   non-empty) become headers too, and then replace `HTTP_CONTENT_TYPE`/`HTTP_CONTENT_LENGTH`
///   if a front end also sent those.
/// - An empty `CONTENT_LENGTH` (nginx sends one for GET) means a length of 0 and adds no
///   header; a non-digit in it is [`CgiError::BadContentLength`].
/// - `HTTPS` equal to `on` or `1` (any case) marks the request secure.
/// - Addresses and ports that do not parse (e.g. nginx's `unix:` for a Unix socket) are
///   `None`, not an error.
pub fn parse_request(vars: &CgiVars, max_headers: usize) -> Result<RequestHead, CgiError> {
    let method = vars.get("REQUEST_METHOD").ok_or(CgiError::MissingMethod)?;
    let method = Method::from_bytes(method).map_err(|_| CgiError::BadMethod)?;
    let version = match vars.get("SERVER_PROTOCOL") {
        None => Version::HTTP_11,
        Some(p) => parse_version(p)
            .ok_or_else(|| CgiError::BadProtocol(String::from_utf8_lossy(p).into_owned()))?,
    };
    let uri = request_uri(vars)?;

    let content_type = vars.get("CONTENT_TYPE").filter(|v| !v.is_empty());
    let (content_length, content_length_header) = match vars.get("CONTENT_LENGTH") {
        None => (None, None),
        Some(b"") => (Some(0), None),
        Some(v) => {
            let n = parse_decimal(v).ok_or(CgiError::BadContentLength)?;
            (Some(n), Some(v))
        }
    };

    // `HeaderMap` holds at most 32768 entries and panics past that in its plain methods:
    // only the `try_` forms are used on sizes a peer controls.
    let too_many = |_| CgiError::TooManyHeaders { limit: max_headers };
    let mut headers = HeaderMap::try_with_capacity(vars.len().min(max_headers.saturating_add(2)))
        .map_err(too_many)?;
    let mut count = 0;
    let mut name_buf = Vec::with_capacity(64);
    for (name, value) in &vars.pairs {
        let Some(suffix) = name.strip_prefix(b"HTTP_") else {
            continue;
        };
        if (suffix == b"CONTENT_TYPE" && content_type.is_some())
            || (suffix == b"CONTENT_LENGTH" && content_length_header.is_some())
        {
            continue;
        }
        count += 1;
        if count > max_headers {
            return Err(CgiError::TooManyHeaders { limit: max_headers });
        }
        name_buf.clear();
        name_buf.extend(suffix.iter().map(|&b| match b {
            b'_' => b'-',
            b => b.to_ascii_lowercase(),
        }));
        let bad = || CgiError::BadHeader(String::from_utf8_lossy(name).into_owned());
        let header_name = HeaderName::from_bytes(&name_buf).map_err(|_| bad())?;
        let header_value = HeaderValue::from_maybe_shared(value.clone()).map_err(|_| bad())?;
        headers
            .try_append(header_name, header_value)
            .map_err(too_many)?;
    }
    if let Some(v) = content_type {
        let v = HeaderValue::from_bytes(v)
            .map_err(|_| CgiError::BadHeader("CONTENT_TYPE".to_owned()))?;
        headers.try_insert(CONTENT_TYPE, v).map_err(too_many)?;
    }
    if let Some(v) = content_length_header {
        // Only digits: always a valid header value.
        let v = HeaderValue::from_bytes(v).map_err(|_| CgiError::BadContentLength)?;
        headers.try_insert(CONTENT_LENGTH, v).map_err(too_many)?;
    }

    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        content_length,
        secure: vars
            .get("HTTPS")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1"),
        server_name: vars
            .get_str("SERVER_NAME")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        server_addr: vars.get("SERVER_ADDR").and_then(parse_ip),
        server_port: vars.get_str("SERVER_PORT").and_then(|p| p.parse().ok()),
        remote_addr: vars.get("REMOTE_ADDR").and_then(parse_ip),
        remote_port: vars.get_str("REMOTE_PORT").and_then(|p| p.parse().ok()),
    })
}

fn parse_version(p: &[u8]) -> Option<Version> {
    Some(match p {
        b"HTTP/1.1" => Version::HTTP_11,
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/0.9" => Version::HTTP_09,
        b"HTTP/2" | b"HTTP/2.0" => Version::HTTP_2,
        b"HTTP/3" => Version::HTTP_3,
        _ => return None,
    })
}

/// A non-empty run of ASCII digits that fits in a `u64` (no sign, no spaces).
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// An IP address, bracketed IPv6 (`[::1]`) accepted.
fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// Characters kept as they are in a path rebuilt from decoded `SCRIPT_NAME`/`PATH_INFO`:
/// RFC 3986 unreserved, sub-delims, `:`, `@` and `/`.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// Characters kept as they are when repairing an already encoded URI: everything RFC 3986
/// allows in a URI, `%` included.
fn is_uri_char(b: u8) -> bool {
    is_path_char(b) || b"?#[]%".contains(&b)
}

fn percent_encode_into(out: &mut Vec<u8>, input: &[u8], keep: fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

fn request_uri(vars: &CgiVars) -> Result<Uri, CgiError> {
    if let Some(raw) = vars.get("REQUEST_URI").filter(|u| !u.is_empty()) {
        if let Ok(uri) = Uri::try_from(raw) {
            return Ok(uri);
        }
        // Repair only the origin form: encoding bytes of an authority could change the host.
        if raw[0] != b'/' {
            return Err(CgiError::BadUri);
        }
        let mut fixed = Vec::with_capacity(raw.len() + 16);
        percent_encode_into(&mut fixed, raw, is_uri_char);
        return Uri::try_from(fixed).map_err(|_| CgiError::BadUri);
    }
    let script = vars.get("SCRIPT_NAME").unwrap_or_default();
    let path_info = vars.get("PATH_INFO").unwrap_or_default();
    let query = vars.get("QUERY_STRING").unwrap_or_default();
    let mut uri = Vec::with_capacity(script.len() + path_info.len() + query.len() + 2);
    let path_starts_with_slash = if script.is_empty() {
        path_info.starts_with(b"/")
    } else {
        script.starts_with(b"/")
    };
    if !path_starts_with_slash {
        uri.push(b'/');
    }
    percent_encode_into(&mut uri, script, is_path_char);
    percent_encode_into(&mut uri, path_info, is_path_char);
    if !query.is_empty() {
        uri.push(b'?');
        percent_encode_into(&mut uri, query, is_uri_char);
    }
    Uri::try_from(uri).map_err(|_| CgiError::BadUri)
}

/// Writes `Status: NNN Reason\r\n`, the headers and the blank line.
///
/// The reason is the code's canonical one; a code without one is written as `NNN ` (RFC 3875
/// allows an empty reason phrase). A header called `Status` in `headers` is skipped: `status`
/// is the one that counts.
pub fn encode_response_head(out: &mut BytesMut, status: StatusCode, headers: &HeaderMap) {
    let reason = status.canonical_reason().unwrap_or("");
    out.reserve(
        16 + reason.len()
            + 2
            + headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>(),
    );
    out.put_slice(b"Status: ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        if name.as_str() == "status" {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
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
///
/// Lines end with `\r\n` or `\n`. `Status: NNN reason` sets the status (at most once);
/// without it, an absolute `Location` (a client redirect) gives 302 and anything else 200.
/// A head of no header at all, a continuation line (starting with a space or tab), a line
/// without `:` or an invalid name or value is [`ResponseHeadError::Malformed`]. The head,
/// blank line included, must fit in `max_bytes`, else [`ResponseHeadError::TooLarge`].
pub fn parse_response_head(
    buf: &[u8],
    max_bytes: usize,
) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
    let window = &buf[..buf.len().min(max_bytes)];
    let mut lines = Vec::new();
    let mut pos = 0;
    let consumed = loop {
        let Some(nl) = window[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() >= max_bytes {
                return Err(ResponseHeadError::TooLarge { limit: max_bytes });
            }
            return Ok(None);
        };
        let line = &window[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        lines.push(line);
    };
    if lines.is_empty() {
        return Err(ResponseHeadError::Malformed);
    }

    let mut status = None;
    // More lines than a `HeaderMap` can hold (32768) only fit in a huge limit: too large.
    let too_large = |_| ResponseHeadError::TooLarge { limit: max_bytes };
    let mut headers = HeaderMap::try_with_capacity(lines.len()).map_err(too_large)?;
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ResponseHeadError::Malformed)?;
        let name = &line[..colon];
        let value = trim_ows(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"status") {
            if status.is_some() {
                return Err(ResponseHeadError::Malformed);
            }
            status = Some(parse_status_line(value)?);
            continue;
        }
        // A continuation line starts with whitespace, which no valid name contains.
        let name = HeaderName::from_bytes(name).map_err(|_| ResponseHeadError::Malformed)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| ResponseHeadError::Malformed)?;
        headers.try_append(name, value).map_err(too_large)?;
    }
    let status = status.unwrap_or_else(|| {
        let absolute = headers
            .get(LOCATION)
            .and_then(|l| Uri::try_from(l.as_bytes()).ok())
            .is_some_and(|u| u.scheme().is_some());
        if absolute {
            StatusCode::FOUND
        } else {
            StatusCode::OK
        }
    });
    Ok(Some((ResponseHead { status, headers }, consumed)))
}

/// `NNN` or `NNN reason`.
fn parse_status_line(value: &[u8]) -> Result<StatusCode, ResponseHeadError> {
    let code = value.get(..3).ok_or(ResponseHeadError::Malformed)?;
    if value.len() > 3 && value[3] != b' ' {
        return Err(ResponseHeadError::Malformed);
    }
    StatusCode::from_bytes(code).map_err(|_| ResponseHeadError::Malformed)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> CgiVars {
        let mut v = CgiVars::new();
        for (n, val) in list {
            v.push(
                Bytes::copy_from_slice(n.as_bytes()),
                Bytes::copy_from_slice(val.as_bytes()),
            );
        }
        v
    }

    fn req(list: &[(&str, &str)]) -> Result<RequestHead, CgiError> {
        parse_request(&vars(list), DEFAULT_MAX_HEADERS)
    }

    fn uri_of(list: &[(&str, &str)]) -> String {
        let mut l = vec![("REQUEST_METHOD", "GET")];
        l.extend_from_slice(list);
        req(&l).unwrap().uri.to_string()
    }

    #[test]
    fn nginx_get_request() {
        let h = req(&[
            ("QUERY_STRING", "a=1"),
            ("REQUEST_METHOD", "GET"),
            ("CONTENT_TYPE", ""),
            ("CONTENT_LENGTH", ""),
            ("SCRIPT_NAME", "/index.php"),
            ("REQUEST_URI", "/index.php?a=1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("HTTPS", "on"),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("REMOTE_PORT", "51234"),
            ("SERVER_ADDR", "::1"),
            ("SERVER_PORT", "443"),
            ("SERVER_NAME", "example.org"),
            ("HTTP_HOST", "example.org"),
            ("HTTP_USER_AGENT", "curl/8"),
            ("HTTP_X_FORWARDED_FOR", "a"),
            ("HTTP_X_FORWARDED_FOR", "b"),
        ])
        .unwrap();
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri, "/index.php?a=1");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.content_length, Some(0));
        assert!(h.headers.get(CONTENT_LENGTH).is_none());
        assert!(h.headers.get(CONTENT_TYPE).is_none());
        assert_eq!(h.headers["host"], "example.org");
        assert_eq!(h.headers["user-agent"], "curl/8");
        let xff: Vec<_> = h.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(xff, ["a", "b"]);
        assert_eq!(h.headers.len(), 4);
        assert!(h.secure);
        assert_eq!(h.server_name.as_deref(), Some("example.org"));
        assert_eq!(h.server_addr, Some("::1".parse().unwrap()));
        assert_eq!(h.server_port, Some(443));
        assert_eq!(h.remote_addr, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(h.remote_port, Some(51234));
    }

    #[test]
    fn post_with_content_headers() {
        let h = req(&[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "12"),
            ("HTTP_CONTENT_TYPE", "application/other"),
            ("HTTP_CONTENT_LENGTH", "99"),
        ])
        .unwrap();
        assert_eq!(h.content_length, Some(12));
        assert_eq!(h.headers.get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(h.headers[CONTENT_TYPE], "text/plain");
        assert_eq!(h.headers.get_all(CONTENT_LENGTH).iter().count(), 1);
        assert_eq!(h.headers[CONTENT_LENGTH], "12");
        // Without CONTENT_*, the HTTP_ forms are kept.
        let h = req(&[("REQUEST_METHOD", "POST"), ("HTTP_CONTENT_TYPE", "a/b")]).unwrap();
        assert_eq!(h.headers[CONTENT_TYPE], "a/b");
        assert_eq!(h.content_length, None);
        let h = req(&[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "0")]).unwrap();
        assert_eq!(h.content_length, Some(0));
        assert_eq!(h.headers[CONTENT_LENGTH], "0");
    }

    #[test]
    fn bad_content_length() {
        for v in ["x", "-1", "+1", " 1", "1 ", "18446744073709551616"] {
            assert_eq!(
                req(&[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", v)]).unwrap_err(),
                CgiError::BadContentLength,
                "{v:?}"
            );
        }
    }

    #[test]
    fn method_errors() {
        assert_eq!(req(&[]).unwrap_err(), CgiError::MissingMethod);
        assert_eq!(
            req(&[("REQUEST_METHOD", "")]).unwrap_err(),
            CgiError::BadMethod
        );
        assert_eq!(
            req(&[("REQUEST_METHOD", "G T")]).unwrap_err(),
            CgiError::BadMethod
        );
        assert_eq!(
            req(&[("REQUEST_METHOD", "PURGE")]).unwrap().method.as_str(),
            "PURGE"
        );
    }

    #[test]
    fn protocols() {
        for (p, v) in [
            ("HTTP/1.1", Version::HTTP_11),
            ("HTTP/1.0", Version::HTTP_10),
            ("HTTP/0.9", Version::HTTP_09),
            ("HTTP/2", Version::HTTP_2),
            ("HTTP/2.0", Version::HTTP_2),
            ("HTTP/3", Version::HTTP_3),
        ] {
            let h = req(&[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", p)]).unwrap();
            assert_eq!(h.version, v);
        }
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET")]).unwrap().version,
            Version::HTTP_11
        );
        for p in ["", "HTTP/1.2", "http/1.1", "INCLUDED", "HTTP/3.0"] {
            assert_eq!(
                req(&[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", p)]).unwrap_err(),
                CgiError::BadProtocol(p.to_owned())
            );
        }
    }

    #[test]
    fn uri_forms() {
        assert_eq!(uri_of(&[("REQUEST_URI", "/a/b?c=d")]), "/a/b?c=d");
        assert_eq!(
            uri_of(&[("REQUEST_URI", "http://example.org:8080/p?q")]),
            "http://example.org:8080/p?q"
        );
        assert_eq!(uri_of(&[("REQUEST_URI", "*")]), "*");
        // Rebuilt: only a non-empty query adds '?'.
        let parts = [("SCRIPT_NAME", "/app.cgi"), ("PATH_INFO", "/x/y")];
        assert_eq!(uri_of(&parts), "/app.cgi/x/y");
        let mut with_q = parts.to_vec();
        with_q.push(("QUERY_STRING", ""));
        assert_eq!(uri_of(&with_q), "/app.cgi/x/y");
        with_q.push(("QUERY_STRING", "ignored: the first one counts"));
        assert_eq!(uri_of(&with_q), "/app.cgi/x/y");
        assert_eq!(
            uri_of(&[
                ("SCRIPT_NAME", "/s"),
                ("PATH_INFO", "/a b?c%d"),
                ("QUERY_STRING", "q=1%202")
            ]),
            "/s/a%20b%3Fc%25d?q=1%202"
        );
        assert_eq!(uri_of(&[("PATH_INFO", "/only")]), "/only");
        assert_eq!(uri_of(&[("QUERY_STRING", "x=1")]), "/?x=1");
        assert_eq!(uri_of(&[("SCRIPT_NAME", "rel")]), "/rel");
        assert_eq!(uri_of(&[("REQUEST_URI", "")]), "/");
        assert_eq!(uri_of(&[]), "/");
    }

    #[test]
    fn invalid_origin_form_uri_is_percent_encoded() {
        assert_eq!(
            uri_of(&[("REQUEST_URI", "/a b/\u{e9}?x=\"y\"")]),
            "/a%20b/%C3%A9?x=%22y%22"
        );
        // Raw bytes that are not UTF-8 either.
        let mut v = vars(&[("REQUEST_METHOD", "GET")]);
        v.push(
            Bytes::from_static(b"REQUEST_URI"),
            Bytes::from_static(b"/\xff\xfe x"),
        );
        let h = parse_request(&v, 10).unwrap();
        assert_eq!(h.uri, "/%FF%FE%20x");
        let mut v = vars(&[("REQUEST_METHOD", "GET")]);
        v.push(
            Bytes::from_static(b"REQUEST_URI"),
            Bytes::from_static(b"/\xff"),
        );
        let h = parse_request(&v, 10).unwrap();
        assert!(h.uri.path().is_ascii(), "{}", h.uri);
        // An existing escape is kept as it is.
        assert_eq!(uri_of(&[("REQUEST_URI", "/a%20 b")]), "/a%20%20b");
    }

    #[test]
    fn invalid_uri_not_in_origin_form_is_refused() {
        for u in ["http://exa mple.org/", "no-slash here", "http://x/a b"] {
            assert_eq!(
                req(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", u)]).unwrap_err(),
                CgiError::BadUri,
                "{u:?}"
            );
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("HTTP_", "x")]).unwrap_err(),
            CgiError::BadHeader("HTTP_".into())
        );
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("HTTP_A B", "x")]).unwrap_err(),
            CgiError::BadHeader("HTTP_A B".into())
        );
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("HTTP_X", "a\nb")]).unwrap_err(),
            CgiError::BadHeader("HTTP_X".into())
        );
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", "a\0b")]).unwrap_err(),
            CgiError::BadHeader("CONTENT_TYPE".into())
        );
    }

    #[test]
    fn header_limit_is_exact() {
        let mut list = vec![("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", "a/b")];
        let names: Vec<String> = (0..5).map(|i| format!("HTTP_X_{i}")).collect();
        list.extend(names.iter().map(|n| (n.as_str(), "v")));
        assert_eq!(parse_request(&vars(&list), 5).unwrap().headers.len(), 6);
        assert_eq!(
            parse_request(&vars(&list), 4).unwrap_err(),
            CgiError::TooManyHeaders { limit: 4 }
        );
    }

    #[test]
    fn more_headers_than_a_header_map_holds_is_an_error_not_a_panic() {
        let mut v = vars(&[("REQUEST_METHOD", "GET")]);
        for i in 0..40_000 {
            v.push(Bytes::from(format!("HTTP_X_{i}")), Bytes::from_static(b"v"));
        }
        assert_eq!(
            parse_request(&v, usize::MAX).unwrap_err(),
            CgiError::TooManyHeaders { limit: usize::MAX }
        );
    }

    #[test]
    fn https_and_addresses() {
        for (v, secure) in [("on", true), ("ON", true), ("1", true), ("", false)] {
            let h = req(&[("REQUEST_METHOD", "GET"), ("HTTPS", v)]).unwrap();
            assert_eq!(h.secure, secure, "{v:?}");
        }
        assert!(
            !req(&[("REQUEST_METHOD", "GET"), ("HTTPS", "off")])
                .unwrap()
                .secure
        );
        let h = req(&[
            ("REQUEST_METHOD", "GET"),
            ("REMOTE_ADDR", "unix:"),
            ("REMOTE_PORT", ""),
            ("SERVER_ADDR", "[2001:db8::1]"),
            ("SERVER_PORT", "70000"),
            ("SERVER_NAME", ""),
        ])
        .unwrap();
        assert_eq!(h.remote_addr, None);
        assert_eq!(h.remote_port, None);
        assert_eq!(h.server_addr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(h.server_port, None);
        assert_eq!(h.server_name, None);
    }

    #[test]
    fn response_head_encoding() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.insert("status", HeaderValue::from_static("500"));
        let mut out = BytesMut::new();
        encode_response_head(&mut out, StatusCode::OK, &headers);
        assert_eq!(
            &out[..],
            b"Status: 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
        );
        out.clear();
        encode_response_head(
            &mut out,
            StatusCode::from_u16(299).unwrap(),
            &HeaderMap::new(),
        );
        assert_eq!(&out[..], b"Status: 299 \r\n\r\n");
    }

    fn parse(s: &[u8]) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
        parse_response_head(s, DEFAULT_MAX_RESPONSE_HEAD_BYTES)
    }

    #[test]
    fn response_head_parsing() {
        let (h, n) = parse(b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(n, 50);
        assert_eq!(h.status, StatusCode::NOT_FOUND);
        assert_eq!(h.headers.len(), 1);
        assert_eq!(h.headers[CONTENT_TYPE], "text/html");
        let (h, n) = parse(b"content-type:text/plain\nX:  a b \n\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 34);
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.headers["x"], "a b");
        let (h, _) = parse(b"status: 201\r\nX: 1\n\r\n").unwrap().unwrap();
        assert_eq!(h.status, StatusCode::CREATED);
        let (h, _) = parse(b"Location: https://example.org/\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::FOUND);
        let (h, _) = parse(b"Location: /local\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        let (h, _) = parse(b"Status: 301\r\nLocation: https://e/\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::MOVED_PERMANENTLY);
    }

    #[test]
    fn response_head_needs_more() {
        for p in [&b""[..], b"Status: 200", b"Status: 200\r\n", b"A: b\r\n\r"] {
            assert!(parse(p).unwrap().is_none(), "{p:?}");
        }
    }

    #[test]
    fn response_head_malformed() {
        for p in [
            &b"\r\n"[..],
            b"\n",
            b"A: 1\r\n continued\r\n\r\n",
            b"A: 1\r\n\tcontinued\r\n\r\n",
            b"no colon\r\n\r\n",
            b": empty name\r\n\r\n",
            b"A : 1\r\n\r\n",
            b"A: x\ry\r\n\r\n",
            b"Status: 20\r\n\r\n",
            b"Status: abc\r\n\r\n",
            b"Status: 2000\r\n\r\n",
            b"Status: 099 x\r\n\r\n",
            b"Status: 200\r\nStatus: 200\r\n\r\n",
        ] {
            assert_eq!(
                parse(p).unwrap_err(),
                ResponseHeadError::Malformed,
                "{:?}",
                String::from_utf8_lossy(p)
            );
        }
    }

    #[test]
    fn response_head_with_more_lines_than_a_header_map_holds() {
        let mut head = Vec::new();
        for i in 0..40_000 {
            head.extend_from_slice(format!("x{i}: v\n").as_bytes());
        }
        head.extend_from_slice(b"\n");
        assert_eq!(
            parse_response_head(&head, usize::MAX).unwrap_err(),
            ResponseHeadError::TooLarge { limit: usize::MAX }
        );
    }

    #[test]
    fn response_head_limit_is_exact() {
        let head = b"Content-Type: a/b\r\n\r\n";
        let n = head.len();
        assert_eq!(parse_response_head(head, n).unwrap().unwrap().1, n);
        assert_eq!(
            parse_response_head(head, n - 1).unwrap_err(),
            ResponseHeadError::TooLarge { limit: n - 1 }
        );
        // Incomplete and shorter than the limit: wait; as long as the limit: refuse.
        assert!(parse_response_head(&head[..n - 1], n).unwrap().is_none());
        assert_eq!(
            parse_response_head(&head[..n - 1], n - 1).unwrap_err(),
            ResponseHeadError::TooLarge { limit: n - 1 }
        );
    }
}
