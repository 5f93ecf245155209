//! CGI/1.1 (RFC 3875): meta-variables ([`CgiVars`]), the request head they describe
//! (twisted.web2's `makeRequest`), and CGI response heads (`Status:` + headers + blank line).

use std::net::{IpAddr, Ipv4Addr};

use bytes::{BufMut, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use super::header_names;
use super::name_key::NameKey;
pub use super::vars::CgiVars;

/// Default limit on the number of `HTTP_*` variables turned into headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Default limit on the size of a CGI response head, blank line included.
pub const DEFAULT_MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

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
    // `HeaderMap` holds at most 32768 entries and panics past that in its plain methods:
    // only the `try_` forms are used on sizes a peer controls.
    let too_many = |_| CgiError::TooManyHeaders { limit: max_headers };
    // Room for exactly the headers there will be (unless there are too many): `HTTP_*`,
    // plus `CONTENT_TYPE` and `CONTENT_LENGTH`.
    let http_vars = vars.names().filter(|n| n.starts_with(b"HTTP_")).count();
    let mut headers = HeaderMap::try_with_capacity(http_vars.min(max_headers).saturating_add(2))
        .map_err(too_many)?;
    let mut count = 0;
    let mut name_buf = Vec::new();
    let mut append = |headers: &mut HeaderMap, name: &[u8], value: &[u8], suffix: &[u8]| {
        count += 1;
        if count > max_headers {
            return Err(CgiError::TooManyHeaders { limit: max_headers });
        }
        let bad = || CgiError::BadHeader(String::from_utf8_lossy(name).into_owned());
        let header_name = match header_names::common(suffix) {
            Some(n) => n,
            None => {
                name_buf.clear();
                name_buf.extend(suffix.iter().map(|&b| match b {
                    b'_' => b'-',
                    b => b.to_ascii_lowercase(),
                }));
                HeaderName::from_bytes(&name_buf).map_err(|_| bad())?
            }
        };
        let header_value = HeaderValue::from_maybe_shared(vars.shared(value)).map_err(|_| bad())?;
        headers
            .try_append(header_name, header_value)
            .map_err(too_many)?;
        Ok(())
    };

    // One pass: the variables this function reads (the first of each name counts) and the
    // `HTTP_*` headers; `HTTP_CONTENT_*` wait until `CONTENT_*` are known.
    let mut k = Known::default();
    let mut http_content: [Option<(&[u8], &[u8])>; 2] = [None, None];
    for (name, value) in vars.iter() {
        if let Some(suffix) = name.strip_prefix(b"HTTP_") {
            match suffix {
                b"CONTENT_TYPE" => http_content[0] = http_content[0].or(Some((name, value))),
                b"CONTENT_LENGTH" => http_content[1] = http_content[1].or(Some((name, value))),
                _ => append(&mut headers, name, value, suffix)?,
            }
        } else {
            k.offer(name, value);
        }
    }

    let method = k.method.ok_or(CgiError::MissingMethod)?;
    let method = Method::from_bytes(method).map_err(|_| CgiError::BadMethod)?;
    let version = match k.protocol {
        None => Version::HTTP_11,
        Some(p) => parse_version(p)
            .ok_or_else(|| CgiError::BadProtocol(String::from_utf8_lossy(p).into_owned()))?,
    };
    let uri = request_uri(vars, &k)?;

    let content_type = k.content_type.filter(|v| !v.is_empty());
    let (content_length, content_length_header) = match k.content_length {
        None => (None, None),
        Some([]) => (Some(0), None),
        Some(v) => {
            let n = parse_decimal(v).ok_or(CgiError::BadContentLength)?;
            (Some(n), Some(v))
        }
    };
    for (i, present) in [content_type.is_some(), content_length_header.is_some()]
        .into_iter()
        .enumerate()
    {
        if let (false, Some((name, value))) = (present, http_content[i]) {
            append(&mut headers, name, value, &name[b"HTTP_".len()..])?;
        }
    }
    if let Some(v) = content_type {
        let v = HeaderValue::from_maybe_shared(vars.shared(v))
            .map_err(|_| CgiError::BadHeader("CONTENT_TYPE".to_owned()))?;
        headers.try_insert(CONTENT_TYPE, v).map_err(too_many)?;
    }
    if let Some(v) = content_length_header {
        // Only digits: always a valid header value.
        let v = HeaderValue::from_maybe_shared(vars.shared(v))
            .map_err(|_| CgiError::BadContentLength)?;
        headers.try_insert(CONTENT_LENGTH, v).map_err(too_many)?;
    }

    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        content_length,
    })
}

/// The variables [`parse_request`] reads, found in one pass (the first of each name counts,
/// as with [`CgiVars::get`]).
#[derive(Default)]
struct Known<'a> {
    method: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
    request_uri: Option<&'a [u8]>,
    script_name: Option<&'a [u8]>,
    path_info: Option<&'a [u8]>,
    query_string: Option<&'a [u8]>,
    content_type: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
}

impl<'a> Known<'a> {
    fn offer(&mut self, name: &[u8], value: &'a [u8]) {
        // Every name here is at most 16 bytes: its key alone tells it.
        const REQUEST_METHOD: NameKey = NameKey::exact(b"REQUEST_METHOD");
        const SERVER_PROTOCOL: NameKey = NameKey::exact(b"SERVER_PROTOCOL");
        const REQUEST_URI: NameKey = NameKey::exact(b"REQUEST_URI");
        const SCRIPT_NAME: NameKey = NameKey::exact(b"SCRIPT_NAME");
        const PATH_INFO: NameKey = NameKey::exact(b"PATH_INFO");
        const QUERY_STRING: NameKey = NameKey::exact(b"QUERY_STRING");
        const CONTENT_TYPE: NameKey = NameKey::exact(b"CONTENT_TYPE");
        const CONTENT_LENGTH: NameKey = NameKey::exact(b"CONTENT_LENGTH");
        let slot = match NameKey::of(name) {
            REQUEST_METHOD => &mut self.method,
            SERVER_PROTOCOL => &mut self.protocol,
            REQUEST_URI => &mut self.request_uri,
            SCRIPT_NAME => &mut self.script_name,
            PATH_INFO => &mut self.path_info,
            QUERY_STRING => &mut self.query_string,
            CONTENT_TYPE => &mut self.content_type,
            CONTENT_LENGTH => &mut self.content_length,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
}

/// What the front end says of the connection: read from the variables when asked for, not
/// decoded for every request, since most handlers never ask. The first variable of each name
/// counts, as with [`CgiVars::get`].
impl CgiVars {
    /// `HTTPS` is `on` (in any case) or `1`.
    pub fn secure(&self) -> bool {
        self.get("HTTPS")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1")
    }

    /// `SERVER_NAME`, when it is non-empty UTF-8.
    pub fn server_name(&self) -> Option<&str> {
        self.get_str("SERVER_NAME").filter(|s| !s.is_empty())
    }

    /// `SERVER_ADDR`, when it is an IP address (bracketed IPv6 accepted).
    pub fn server_addr(&self) -> Option<IpAddr> {
        self.get("SERVER_ADDR").and_then(parse_ip)
    }

    /// `SERVER_PORT`, when it is a port number.
    pub fn server_port(&self) -> Option<u16> {
        self.get("SERVER_PORT").and_then(parse_port)
    }

    /// `REMOTE_ADDR`, when it is an IP address (bracketed IPv6 accepted; a Unix socket's
    /// peer, which some front ends send as `unix:`, is none).
    pub fn remote_addr(&self) -> Option<IpAddr> {
        self.get("REMOTE_ADDR").and_then(parse_ip)
    }

    /// `REMOTE_PORT`, when it is a port number.
    pub fn remote_port(&self) -> Option<u16> {
        self.get("REMOTE_PORT").and_then(parse_port)
    }
}

/// A variable's value, empty when absent.
fn part(v: Option<&[u8]>) -> &[u8] {
    v.unwrap_or_default()
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

/// A port as `str::parse::<u16>` reads one (an optional `+`, then digits), without going
/// through `str`.
fn parse_port(v: &[u8]) -> Option<u16> {
    let digits = v.strip_prefix(b"+").unwrap_or(v);
    parse_decimal(digits).and_then(|p| u16::try_from(p).ok())
}

/// An IP address, bracketed IPv6 (`[::1]`) accepted.
fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(v) {
        return Some(IpAddr::V4(v4));
    }
    let s = std::str::from_utf8(v).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// A dotted-quad IPv4 address, as `Ipv4Addr`'s parser reads it (four decimal octets of at
/// most 255, no leading zeros), in one pass without its generic machinery: every request
/// has two.
fn parse_ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    // The octet being read, its value and its digits so far.
    let (mut index, mut value, mut digits) = (0, 0u16, 0);
    for &b in v {
        if b == b'.' {
            if digits == 0 || index == 3 {
                return None;
            }
            octets[index] = u8::try_from(value).ok()?;
            (index, value, digits) = (index + 1, 0, 0);
            continue;
        }
        // Only digits, at most three, no leading zero: at most 999, no overflow.
        if !b.is_ascii_digit() || digits == 3 || (digits == 1 && value == 0) {
            return None;
        }
        value = value * 10 + u16::from(b - b'0');
        digits += 1;
    }
    if digits == 0 || index != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
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

fn request_uri(vars: &CgiVars, k: &Known<'_>) -> Result<Uri, CgiError> {
    if let Some(raw) = k.request_uri.filter(|u| !u.is_empty()) {
        if let Ok(uri) = Uri::from_maybe_shared(vars.shared(raw)) {
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
    let script = part(k.script_name);
    let path_info = part(k.path_info);
    let query = part(k.query_string);
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
        // Each name's text once: for a standard header it is a table lookup.
        let name = name.as_str();
        if name == "status" {
            continue;
        }
        out.put_slice(name.as_bytes());
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
///
/// Each call scans `buf` from its start: to read a head that arrives in many small pieces,
/// use [`ResponseHeadDecoder`], which looks at each byte once.
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

/// Incremental form of [`parse_response_head`] for a head that arrives in pieces (a CGI
/// script's stdout, a client's socket): remembers how far it has looked for the blank line,
/// so feeding a head one byte at a time costs linear, not quadratic, time.
///
/// Pass the whole buffer received so far (it must only grow between calls); once the head
/// is complete the result is exactly [`parse_response_head`]'s.
#[derive(Clone, Debug)]
pub struct ResponseHeadDecoder {
    max_bytes: usize,
    /// Bytes already searched for a line end.
    scanned: usize,
    /// Start of the line that is not complete yet.
    line_start: usize,
}

impl ResponseHeadDecoder {
    /// A decoder for a head of at most `max_bytes`, blank line included.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            scanned: 0,
            line_start: 0,
        }
    }

    /// Looks at the bytes added since the last call; see [`parse_response_head`].
    pub fn decode(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
        let window = &buf[..buf.len().min(self.max_bytes)];
        let mut from = self.scanned.min(window.len());
        while let Some(nl) = window[from..].iter().position(|&b| b == b'\n') {
            let end = from + nl;
            let line = &window[self.line_start..end];
            if line.is_empty() || line == b"\r" {
                return parse_response_head(&buf[..end + 1], self.max_bytes);
            }
            self.line_start = end + 1;
            from = end + 1;
        }
        self.scanned = window.len();
        if buf.len() >= self.max_bytes {
            return Err(ResponseHeadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(None)
    }
}

/// The status line an NPH script (RFC 3875 section 5) writes first, without its line end:
/// `HTTP/1.1 200 OK`, `HTTP/1.0 404`, `HTTP/2 204 No Content`.
pub fn parse_nph_status_line(line: &[u8]) -> Result<StatusCode, ResponseHeadError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line
        .strip_prefix(b"HTTP/")
        .ok_or(ResponseHeadError::Malformed)?;
    let sp = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ResponseHeadError::Malformed)?;
    let version = &rest[..sp];
    if version.is_empty() || !version.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return Err(ResponseHeadError::Malformed);
    }
    parse_status_line(trim_ows(&rest[sp + 1..]))
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
#[path = "cgi_tests.rs"]
mod tests;
