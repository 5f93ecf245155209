//! SCGI request headers: a netstring `<len>:` (name NUL value NUL)* `,` parsed
//! incrementally (a length prefix split across reads, even one byte at a time, works).
//!
//! `CONTENT_LENGTH` must come first, `SCGI` must be `1`, names are unique, and the header
//! size is bounded before anything is buffered.

use std::collections::HashSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::proto::cgi::CgiVars;
use crate::proto::vars::{split_block, Span, MAX_BLOCK_BYTES};

/// Default limit on the netstring's declared length.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Default limit on the number of variables, `CONTENT_LENGTH` and `SCGI` included.
pub const DEFAULT_MAX_VARS: usize = 256;

/// With more variables than this, duplicate names are found with a hash set instead of a
/// linear scan (which costs nothing to set up for the usual few dozen).
const LINEAR_DUP_CHECK_MAX: usize = 32;

/// Why an SCGI header was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ScgiError {
    /// The length prefix is empty, has a non-digit, a leading zero or overflows.
    #[error("bad netstring length")]
    BadLength,
    /// The declared length exceeds the limit.
    #[error("header exceeds {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The netstring is not closed by a comma.
    #[error("netstring not terminated by ','")]
    MissingComma,
    /// A name or value is not NUL-terminated.
    #[error("malformed name-value list")]
    Malformed,
    /// `CONTENT_LENGTH` is not the first variable.
    #[error("CONTENT_LENGTH missing or not first")]
    MissingContentLength,
    /// `CONTENT_LENGTH` is not a decimal number.
    #[error("bad CONTENT_LENGTH")]
    BadContentLength,
    /// `SCGI` is missing or not `1`.
    #[error("SCGI variable missing or not 1")]
    BadScgiVersion,
    /// A name occurs twice.
    #[error("duplicate variable {0}")]
    DuplicateName(String),
    /// Too many variables.
    #[error("more than {limit} variables")]
    TooManyVars {
        /// The configured limit.
        limit: usize,
    },
}

/// A decoded SCGI header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScgiHeader {
    /// All variables, `CONTENT_LENGTH` and `SCGI` included, in wire order.
    pub vars: CgiVars,
    /// The body length declared by `CONTENT_LENGTH`.
    pub content_length: u64,
}

/// Where the decoder is in the netstring.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Reading the decimal length prefix: its value so far and how many digits were seen.
    Length { len: usize, digits: usize },
    /// The `:` has been consumed; waiting for `len` bytes of pairs and the `,`.
    Body { len: usize },
}

/// Incremental SCGI header decoder over a buffer the caller owns and appends to.
///
/// Call [`ScgiDecoder::decode`] after each read until it returns a header. Digits of the
/// length prefix are consumed from `buf` as they arrive (so a prefix split across reads, even
/// one byte at a time, is never rescanned), and the prefix is refused as soon as its value
/// exceeds the limit, so at most one digit more than the limit has is ever read. The pairs are
/// buffered only once the declared length is known to be within the limit. After a header the
/// decoder is back at its start; after an error it keeps returning that error.
#[derive(Debug)]
pub struct ScgiDecoder {
    max_header_bytes: usize,
    max_vars: usize,
    state: State,
    failed: Option<ScgiError>,
}

impl ScgiDecoder {
    /// A decoder with the given limits (a header of 4 GiB at most).
    pub fn new(max_header_bytes: usize, max_vars: usize) -> Self {
        Self {
            max_header_bytes: max_header_bytes.min(MAX_BLOCK_BYTES),
            max_vars,
            state: State::Length { len: 0, digits: 0 },
            failed: None,
        }
    }

    /// Takes the header off the front of `buf` (the body stays in `buf`), or `Ok(None)` if
    /// more bytes are needed. Never rescans bytes it has already examined.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ScgiHeader>, ScgiError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.decode_inner(buf);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<ScgiHeader>, ScgiError> {
        if let State::Length {
            mut len,
            mut digits,
        } = self.state
        {
            let mut used = 0;
            let mut colon = false;
            for &b in buf.iter() {
                used += 1;
                match b {
                    b':' if digits > 0 => {
                        colon = true;
                        break;
                    }
                    // A leading zero is only allowed as the whole prefix ("0:").
                    b'0'..=b'9' if !(digits == 1 && len == 0) => {
                        len = len
                            .checked_mul(10)
                            .and_then(|l| l.checked_add(usize::from(b - b'0')))
                            .ok_or(ScgiError::BadLength)?;
                        digits += 1;
                        if len > self.max_header_bytes {
                            return Err(ScgiError::TooLarge {
                                limit: self.max_header_bytes,
                            });
                        }
                    }
                    _ => return Err(ScgiError::BadLength),
                }
            }
            buf.advance(used);
            self.state = if colon {
                State::Body { len }
            } else {
                State::Length { len, digits }
            };
        }
        let State::Body { len } = self.state else {
            return Ok(None);
        };
        if buf.len() <= len {
            buf.reserve(len + 1 - buf.len());
            return Ok(None);
        }
        if buf[len] != b',' {
            return Err(ScgiError::MissingComma);
        }
        let pairs = split_block(buf, len);
        buf.advance(1);
        self.state = State::Length { len: 0, digits: 0 };
        parse_pairs(pairs, self.max_vars).map(Some)
    }
}

/// Parses `name NUL value NUL ...` and checks the SCGI rules on the variables.
fn parse_pairs(pairs: Bytes, max_vars: usize) -> Result<ScgiHeader, ScgiError> {
    let mut spans = Vec::new();
    let mut rest = &pairs[..];
    let mut pos = 0;
    while !rest.is_empty() {
        if spans.len() == max_vars {
            return Err(ScgiError::TooManyVars { limit: max_vars });
        }
        let name_len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(ScgiError::Malformed)?;
        if name_len == 0 {
            return Err(ScgiError::Malformed);
        }
        let after_name = &rest[name_len + 1..];
        let value_len = after_name
            .iter()
            .position(|&b| b == 0)
            .ok_or(ScgiError::Malformed)?;
        let value_start = pos + name_len + 1;
        let value_end = value_start + value_len;
        spans.push(Span::new(pos..pos + name_len, value_start..value_end));
        pos = value_end + 1;
        rest = &pairs[pos..];
    }
    let vars = CgiVars::from_block(pairs, spans);
    let content_length = match vars.iter().next() {
        Some((b"CONTENT_LENGTH", v)) => parse_decimal(v).ok_or(ScgiError::BadContentLength)?,
        _ => return Err(ScgiError::MissingContentLength),
    };
    if vars.get("SCGI") != Some(b"1") {
        return Err(ScgiError::BadScgiVersion);
    }
    check_unique(&vars)?;
    Ok(ScgiHeader {
        vars,
        content_length,
    })
}

/// A non-empty run of ASCII digits that fits in a `u64`.
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

fn check_unique(vars: &CgiVars) -> Result<(), ScgiError> {
    let dup = |name: &[u8]| ScgiError::DuplicateName(String::from_utf8_lossy(name).into_owned());
    if vars.len() <= LINEAR_DUP_CHECK_MAX {
        let names: Vec<&[u8]> = vars.iter().map(|(n, _)| n).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(dup(n));
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(vars.len());
        for (n, _) in vars.iter() {
            if !seen.insert(n) {
                return Err(dup(n));
            }
        }
    }
    Ok(())
}

/// Writes an SCGI request header (client side: tests and the load generator).
/// `CONTENT_LENGTH` and `SCGI=1` come first, then `vars`.
///
/// `vars` must not contain `CONTENT_LENGTH` or `SCGI` again (the decoder refuses duplicates)
/// and no name or value may contain a NUL byte: both are the caller's to ensure.
pub fn encode_header(out: &mut BytesMut, content_length: u64, vars: &[(&[u8], &[u8])]) {
    let mut digits = [0u8; 20];
    let cl = format_decimal(content_length, &mut digits);
    let len = b"CONTENT_LENGTH\0".len()
        + cl.len()
        + 1
        + b"SCGI\x001\0".len()
        + vars
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum::<usize>();
    let mut prefix = [0u8; 20];
    let prefix = format_decimal(len as u64, &mut prefix);
    out.reserve(prefix.len() + 1 + len + 1);
    out.put_slice(prefix);
    out.put_u8(b':');
    out.put_slice(b"CONTENT_LENGTH\0");
    out.put_slice(cl);
    out.put_slice(b"\0SCGI\x001\0");
    for (n, v) in vars {
        out.put_slice(n);
        out.put_u8(0);
        out.put_slice(v);
        out.put_u8(0);
    }
    out.put_u8(b',');
}

/// Formats `n` in decimal into `buf` and returns the digits.
fn format_decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // A single decimal digit: the cast cannot truncate.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
#[path = "scgi_tests.rs"]
mod tests;
