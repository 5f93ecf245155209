//! Reading one CGI-style response (FastCGI STDOUT content or an SCGI byte stream): the head
//! (`Status:` and headers, parsed by `ringgate::proto::cgi`), then the body, counted and
//! checked as it arrives without being kept.

use bytes::BytesMut;
use ringgate::proto::cgi::parse_response_head;

use crate::stats::ErrorKind;
use crate::verify::Expect;

/// Default limit on a response head (`--max-head-bytes`).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    Pending,
    Parsed {
        status: u16,
        content_length: Option<u64>,
    },
    Bad,
}

/// Incremental reader of one response; reused for the next request with [`Self::start`].
#[derive(Debug)]
pub struct ResponseReader {
    head_buf: BytesMut,
    head: Head,
    max_head: usize,
    received: u64,
    body_len: u64,
    body_ok: bool,
    no_body: bool,
}

impl ResponseReader {
    /// A reader that refuses heads longer than `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        Self {
            head_buf: BytesMut::new(),
            head: Head::Pending,
            max_head,
            received: 0,
            body_len: 0,
            body_ok: true,
            no_body: false,
        }
    }

    /// Resets for a new request; `no_body` for `HEAD` requests (no body whatever
    /// `Content-Length` says).
    pub fn start(&mut self, no_body: bool) {
        self.head_buf.clear();
        self.head = Head::Pending;
        self.received = 0;
        self.body_len = 0;
        self.body_ok = true;
        self.no_body = no_body;
    }

    /// Whether any response byte arrived.
    pub fn received_any(&self) -> bool {
        self.received > 0
    }

    /// Body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Feeds response bytes; `expect` checks the body on the fly.
    pub fn feed(&mut self, data: &[u8], expect: Option<&Expect>) {
        self.received += data.len() as u64;
        match self.head {
            Head::Bad => {}
            Head::Parsed { .. } => self.body(data, expect),
            Head::Pending => {
                self.head_buf.extend_from_slice(data);
                match parse_response_head(&self.head_buf, self.max_head) {
                    Ok(None) => {
                        if self.head_buf.len() > self.max_head {
                            self.head = Head::Bad;
                        }
                    }
                    Err(_) => self.head = Head::Bad,
                    Ok(Some((head, consumed))) => {
                        let content_length = head
                            .headers
                            .get("content-length")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok());
                        self.head = Head::Parsed {
                            status: head.status.as_u16(),
                            content_length,
                        };
                        let rest = self.head_buf.split_off(consumed.min(self.head_buf.len()));
                        self.head_buf.clear();
                        self.body(&rest, expect);
                    }
                }
            }
        }
    }

    fn body(&mut self, data: &[u8], expect: Option<&Expect>) {
        if data.is_empty() {
            return;
        }
        if let Some(e) = expect {
            if self.body_ok && !e.matches(self.body_len, data) {
                self.body_ok = false;
            }
        }
        self.body_len += data.len() as u64;
    }

    /// The response is over (END_REQUEST, or end of stream for SCGI when `at_eof`): its
    /// status, or why it is not a valid response. At end of stream a short head or a body
    /// shorter than `Content-Length` means the connection was cut.
    pub fn finish(&self, expect: Option<&Expect>, at_eof: bool) -> Result<u16, ErrorKind> {
        let (status, content_length) = match self.head {
            Head::Bad => return Err(ErrorKind::BadStatusLine),
            Head::Pending if at_eof && self.received == 0 => {
                return Err(ErrorKind::ClosedBeforeResponse)
            }
            Head::Pending if at_eof => return Err(ErrorKind::ClosedMidResponse),
            Head::Pending => return Err(ErrorKind::BadStatusLine),
            Head::Parsed {
                status,
                content_length,
            } => (status, content_length),
        };
        let bodiless = self.no_body || status < 200 || status == 204 || status == 304;
        if let (Some(cl), false) = (content_length, bodiless) {
            if self.body_len < cl && at_eof {
                return Err(ErrorKind::ClosedMidResponse);
            }
            if self.body_len != cl {
                return Err(ErrorKind::LengthMismatch);
            }
        }
        if let Some(e) = expect {
            if !self.body_ok || self.body_len != e.len() {
                return Err(ErrorKind::VerifyFailed);
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn head_split_anywhere_then_body() {
        let resp =
            b"Status: 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..resp.len() {
            let mut r = ResponseReader::new(DEFAULT_MAX_HEAD_BYTES);
            r.start(false);
            r.feed(&resp[..cut], None);
            r.feed(&resp[cut..], None);
            assert_eq!(r.finish(None, false), Ok(201), "cut at {cut}");
            assert_eq!(r.body_len(), 5);
        }
    }

    #[test]
    fn errors() {
        let mut r = ResponseReader::new(DEFAULT_MAX_HEAD_BYTES);
        r.start(false);
        assert_eq!(r.finish(None, true), Err(ErrorKind::ClosedBeforeResponse));
        r.feed(b"Content-Type: text/plain\r\n", None);
        assert_eq!(r.finish(None, true), Err(ErrorKind::ClosedMidResponse));
        assert_eq!(r.finish(None, false), Err(ErrorKind::BadStatusLine));
        r.start(false);
        r.feed(b"Status: banana\r\n\r\n", None);
        assert_eq!(r.finish(None, false), Err(ErrorKind::BadStatusLine));
        r.start(false);
        r.feed(b"Content-Length: 10\r\n\r\nabc", None);
        assert_eq!(r.finish(None, true), Err(ErrorKind::ClosedMidResponse));
        assert_eq!(r.finish(None, false), Err(ErrorKind::LengthMismatch));
        let mut small = ResponseReader::new(16);
        small.start(false);
        small.feed(&[b'x'; 40], None);
        assert_eq!(small.finish(None, false), Err(ErrorKind::BadStatusLine));
    }

    #[test]
    fn verification() {
        let body = Bytes::from_static(b"abc");
        let e = Expect::for_request("POST", "/echo", &body, true).unwrap();
        let mut r = ResponseReader::new(DEFAULT_MAX_HEAD_BYTES);
        r.start(false);
        r.feed(b"Status: 200 OK\r\n\r\nab", Some(&e));
        assert_eq!(r.finish(Some(&e), false), Err(ErrorKind::VerifyFailed));
        r.feed(b"c", Some(&e));
        assert_eq!(r.finish(Some(&e), false), Ok(200));
        r.feed(b"d", Some(&e));
        assert_eq!(r.finish(Some(&e), false), Err(ErrorKind::VerifyFailed));
    }
}
