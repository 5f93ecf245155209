//! Requests: what one request is ([`RequestSpec`]), the CGI variables a front end like nginx
//! would send for it, and its wire bytes, encoded once per worker thread so the hot path only
//! copies them ([`FcgiRequest::write_to`] patches the request id in place).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringgate::proto::fastcgi::{encode_request, RecordHeader, Role, FLAG_KEEP_CONN, HEADER_LEN};
use ringgate::proto::scgi;

use crate::verify::Expect;

/// What the client does with one request besides sending it and reading the answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    /// Send, read the whole response.
    Normal,
    /// Stop reading the socket for `pause` once the first response bytes arrive.
    SlowReader {
        /// How long reading stops.
        pause: Duration,
    },
    /// Send `ABORT_REQUEST` `after` the request was sent (FastCGI only).
    Abort {
        /// Delay from the send to the abort.
        after: Duration,
    },
    /// `shutdown(SHUT_WR)` once the request is written, then read the whole response.
    HalfClose,
    /// Close the connection as soon as the first response bytes arrive.
    Disconnect,
}

impl Behaviour {
    /// Whether the request needs a connection of its own (it ends the connection).
    pub fn ends_connection(self) -> bool {
        matches!(self, Self::HalfClose | Self::Disconnect)
    }
}

/// One kind of request of a load: a line of a scenario.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// Short name for reports.
    pub name: String,
    /// Relative weight in a mix (smooth weighted round-robin).
    pub weight: u32,
    /// HTTP method (`REQUEST_METHOD`).
    pub method: String,
    /// Request URI with the query string (`REQUEST_URI`).
    pub uri: String,
    /// Request headers, sent as `HTTP_*` (and `CONTENT_TYPE`).
    pub headers: Vec<(String, String)>,
    /// Request body (STDIN / SCGI body).
    pub body: Bytes,
    /// What the client does besides a plain exchange.
    pub behaviour: Behaviour,
    /// What the response body must be, if anything is checked.
    pub expect: Option<Expect>,
}

/// The server-side facts a front end puts into the variables.
#[derive(Clone, Debug)]
pub struct ParamsContext {
    /// `DOCUMENT_ROOT`; `SCRIPT_FILENAME` is this plus the script path.
    pub document_root: String,
    /// `SERVER_NAME` and the default `Host` header.
    pub server_name: String,
    /// `SERVER_ADDR`.
    pub server_addr: String,
    /// `SERVER_PORT`.
    pub server_port: u16,
}

/// Default request headers, as a browser-like client behind nginx would send them.
pub const DEFAULT_HEADERS: [(&str, &str); 4] = [
    (
        "User-Agent",
        concat!("ringgate-load/", env!("CARGO_PKG_VERSION")),
    ),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Accept-Language", "en-US,en;q=0.5"),
];

/// The variables nginx's `fastcgi_params` (plus `SCRIPT_FILENAME` and the request headers as
/// `HTTP_*`) would carry for `spec`, in nginx's order. Names are unique: repeated headers are
/// joined with `", "`. `CONTENT_LENGTH` is included only when `with_content_length`.
pub fn cgi_params(
    spec: &RequestSpec,
    ctx: &ParamsContext,
    with_content_length: bool,
) -> Vec<(String, String)> {
    let (path, query) = match spec.uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (spec.uri.as_str(), ""),
    };
    let content_type = header(spec, "content-type").unwrap_or_default();
    let content_length = if spec.body.is_empty() {
        String::new()
    } else {
        spec.body.len().to_string()
    };
    let mut v: Vec<(String, String)> = Vec::with_capacity(32);
    let mut put = |n: &str, val: &str| v.push((n.to_owned(), val.to_owned()));
    put("QUERY_STRING", query);
    put("REQUEST_METHOD", &spec.method);
    put("CONTENT_TYPE", &content_type);
    if with_content_length {
        put("CONTENT_LENGTH", &content_length);
    }
    put("SCRIPT_NAME", path);
    put("REQUEST_URI", &spec.uri);
    put("DOCUMENT_URI", path);
    put("DOCUMENT_ROOT", &ctx.document_root);
    put("SERVER_PROTOCOL", "HTTP/1.1");
    put("REQUEST_SCHEME", "http");
    put("GATEWAY_INTERFACE", "CGI/1.1");
    put(
        "SERVER_SOFTWARE",
        concat!("ringgate-load/", env!("CARGO_PKG_VERSION")),
    );
    put("REMOTE_ADDR", "127.0.0.1");
    put("REMOTE_PORT", "54321");
    put("REMOTE_USER", "");
    put("SERVER_ADDR", &ctx.server_addr);
    put("SERVER_PORT", &ctx.server_port.to_string());
    put("SERVER_NAME", &ctx.server_name);
    put("REDIRECT_STATUS", "200");
    let script = format!("{}{}", ctx.document_root.trim_end_matches('/'), path);
    put("SCRIPT_FILENAME", &script);
    if header(spec, "host").is_none() {
        put("HTTP_HOST", &ctx.server_name);
    }
    for (name, value) in &spec.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "content-type" || lower == "content-length" {
            continue;
        }
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        match v.iter_mut().find(|(n, _)| *n == var) {
            Some((_, old)) => {
                old.push_str(", ");
                old.push_str(value);
            }
            None => v.push((var, value.clone())),
        }
    }
    v
}

fn header(spec: &RequestSpec, lower: &str) -> Option<String> {
    let mut it = spec
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(lower));
    let first = it.next()?.1.clone();
    Some(it.fold(first, |acc, (_, v)| acc + ", " + v))
}

/// A FastCGI request encoded once (with request id 1): `BEGIN_REQUEST`, `PARAMS` records and
/// their empty terminator, `STDIN` records and their terminator, all padded to 8 bytes.
#[derive(Clone, Debug)]
pub struct FcgiRequest {
    bytes: Bytes,
    /// Offset of every record header, to patch the request id.
    record_offsets: Vec<usize>,
}

impl FcgiRequest {
    /// Encodes `spec`; `keep_conn` sets `FCGI_KEEP_CONN` in `BEGIN_REQUEST`.
    pub fn encode(spec: &RequestSpec, ctx: &ParamsContext, keep_conn: bool) -> Self {
        let vars = cgi_params(spec, ctx, true);
        let pairs = vars.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let mut out = BytesMut::new();
        let flags = if keep_conn { FLAG_KEEP_CONN } else { 0 };
        encode_request(&mut out, 1, Role::RESPONDER, flags, pairs, &spec.body);
        let mut record_offsets = Vec::new();
        let mut at = 0;
        while at < out.len() {
            record_offsets.push(at);
            let head = out[at..]
                .first_chunk::<HEADER_LEN>()
                .expect("the encoder writes whole records");
            let h = RecordHeader::parse(head);
            at += HEADER_LEN + usize::from(h.content_length) + usize::from(h.padding_length);
        }
        Self {
            bytes: out.freeze(),
            record_offsets,
        }
    }

    /// Appends the request under `request_id` to `out` (one copy, no allocation once `out`
    /// has grown to its working size).
    pub fn write_to(&self, out: &mut BytesMut, request_id: u16) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        if request_id != 1 {
            let id = request_id.to_be_bytes();
            for &off in &self.record_offsets {
                out[start + off + 2..start + off + 4].copy_from_slice(&id);
            }
        }
    }

    /// Encoded size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is encoded (never true for a real request).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// An SCGI request (netstring header, then the body), encoded once.
pub fn encode_scgi(spec: &RequestSpec, ctx: &ParamsContext) -> Bytes {
    let params = cgi_params(spec, ctx, false);
    let vars: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    let mut out = BytesMut::new();
    scgi::encode_header(&mut out, spec.body.len() as u64, &vars);
    out.extend_from_slice(&spec.body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringgate::proto::fastcgi::{ParamsDecoder, RecordDecoder, RecordType};

    fn spec() -> RequestSpec {
        RequestSpec {
            name: "t".into(),
            weight: 1,
            method: "POST".into(),
            uri: "/echo?x=1".into(),
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("X-A".into(), "1".into()),
                ("x-a".into(), "2".into()),
            ],
            body: Bytes::from(vec![7u8; 70_000]),
            behaviour: Behaviour::Normal,
            expect: None,
        }
    }

    fn ctx() -> ParamsContext {
        ParamsContext {
            document_root: "/srv/www/".into(),
            server_name: "example".into(),
            server_addr: "127.0.0.1".into(),
            server_port: 9000,
        }
    }

    #[test]
    fn params_follow_nginx() {
        let p = cgi_params(&spec(), &ctx(), true);
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("QUERY_STRING"), Some("x=1"));
        assert_eq!(get("SCRIPT_NAME"), Some("/echo"));
        assert_eq!(get("SCRIPT_FILENAME"), Some("/srv/www/echo"));
        assert_eq!(get("CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get("CONTENT_LENGTH"), Some("70000"));
        assert_eq!(get("HTTP_X_A"), Some("1, 2"));
        assert_eq!(get("HTTP_HOST"), Some("example"));
        assert_eq!(get("HTTP_CONTENT_TYPE"), None);
        assert!(p.len() >= 21);
    }

    #[test]
    fn fastcgi_bytes_decode_back_under_any_id() {
        let req = FcgiRequest::encode(&spec(), &ctx(), true);
        let mut buf = BytesMut::new();
        req.write_to(&mut buf, 513);
        assert_eq!(buf.len() % 8, 0);
        let mut dec = RecordDecoder::new();
        let mut types = Vec::new();
        let mut params = ParamsDecoder::new(1 << 20, 1000);
        let mut stdin = 0;
        while let Some(r) = dec.decode(&mut buf).unwrap() {
            assert_eq!(r.request_id, 513);
            if r.record_type == RecordType::PARAMS {
                params.push(&r.content).unwrap();
            }
            if r.record_type == RecordType::STDIN {
                stdin += r.content.len();
            }
            types.push(r.record_type.0);
        }
        assert!(buf.is_empty());
        assert_eq!(types.first(), Some(&1));
        assert_eq!(stdin, 70_000);
        let vars = params.finish().unwrap();
        assert_eq!(vars.get_str("REQUEST_METHOD"), Some("POST"));
        let stdin_records = types.iter().filter(|&&t| t == 5).count();
        assert_eq!(stdin_records, 3, "two STDIN records and the terminator");
    }
}
