//! Reading a script's response head (RFC 3875 section 6) from its stdout: `Status:`,
//! `Content-Type`, `Location`, LF or CRLF line ends, at most `max_bytes`, with the parser of
//! [`crate::proto::cgi`]. An NPH script (`nph-` name, section 5) writes an HTTP status line
//! first, which becomes the status. A local redirect (`Location: /path` without `Status`)
//! cannot be reprocessed by an application behind FastCGI: it is answered 302, as nginx
//! answers it for fcgiwrap. Hop-by-hop fields (`Connection`, `Keep-Alive`,
//! `Transfer-Encoding`) are dropped: the front end frames the body itself.

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, LOCATION, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};

use super::pump::{Output, OutputError};
use crate::proto::cgi::{parse_nph_status_line, ResponseHeadDecoder, ResponseHeadError};

/// A response head and the body bytes read with it.
#[derive(Debug)]
pub(super) struct Head {
    /// The status.
    pub(super) status: StatusCode,
    /// The header fields.
    pub(super) headers: HeaderMap,
    /// Bytes after the blank line.
    pub(super) rest: Bytes,
}

/// Why no head could be read (each is a 502 but `Output(Idle)`, a 504).
#[derive(Debug, thiserror::Error)]
pub(super) enum HeadError {
    /// The script ended its output without writing anything.
    #[error("the script wrote no response head")]
    Empty,
    /// The output ended inside the head.
    #[error("the script's output ended inside its response head")]
    Truncated,
    /// The head is invalid or too large.
    #[error("invalid response head: {0}")]
    Invalid(#[from] ResponseHeadError),
    /// Reading failed or went idle.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Reads the head from `out`.
pub(super) async fn read_head(
    out: &mut Output,
    nph: bool,
    max_bytes: usize,
) -> Result<Head, HeadError> {
    let mut buf = BytesMut::new();
    // NPH: the status line, then the fields (possibly none) as in a CGI head.
    let mut nph_status = None;
    let mut start = 0;
    let mut decoder = ResponseHeadDecoder::new(max_bytes);
    loop {
        let Some(chunk) = out.read().await? else {
            return Err(if buf.is_empty() {
                HeadError::Empty
            } else {
                HeadError::Truncated
            });
        };
        buf.extend_from_slice(&chunk);
        if nph && nph_status.is_none() {
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() >= max_bytes {
                    return Err(ResponseHeadError::TooLarge { limit: max_bytes }.into());
                }
                continue;
            };
            nph_status = Some(parse_nph_status_line(&buf[..nl])?);
            start = nl + 1;
            decoder = ResponseHeadDecoder::new(max_bytes.saturating_sub(start).max(1));
        }
        let fields = &buf[start..];
        if let Some(status) = nph_status {
            // A status line directly followed by the blank line: no fields.
            for blank in [&b"\n"[..], b"\r\n"] {
                if fields.starts_with(blank) {
                    let rest = buf.split_off(start + blank.len()).freeze();
                    return Ok(finish(status, HeaderMap::new(), true, rest));
                }
            }
            if fields == b"\r" {
                continue;
            }
        }
        if let Some((head, used)) = decoder.decode(fields)? {
            let given = nph_status.is_some() || status_given(&fields[..used]);
            let status = nph_status.unwrap_or(head.status);
            let rest = buf.split_off(start + used).freeze();
            return Ok(finish(status, head.headers, given, rest));
        }
    }
}

fn finish(mut status: StatusCode, mut headers: HeaderMap, given: bool, rest: Bytes) -> Head {
    if !given && status == StatusCode::OK && headers.contains_key(LOCATION) {
        status = StatusCode::FOUND;
    }
    for name in [CONNECTION, TRANSFER_ENCODING] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    Head {
        status,
        headers,
        rest,
    }
}

/// Whether a head has a `Status:` line.
fn status_given(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .any(|line| line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"status:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_redirects_become_302_and_hop_by_hop_fields_go() {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, "/elsewhere".parse().unwrap());
        h.insert(TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        let head = finish(StatusCode::OK, h.clone(), false, Bytes::new());
        assert_eq!(head.status, StatusCode::FOUND);
        assert!(head.headers.get(TRANSFER_ENCODING).is_none());
        assert!(head.headers.get("keep-alive").is_none());
        // With an explicit `Status: 200` the script meant it.
        assert_eq!(finish(StatusCode::OK, h, true, Bytes::new()).status, 200);
    }

    #[test]
    fn status_lines_are_found_in_any_case() {
        assert!(status_given(b"Content-Type: x\nSTATUS: 200 OK\n"));
        assert!(status_given(b"status:404\r\n"));
        assert!(!status_given(b"Content-Type: x\nX-Status: 1\n"));
    }
}
