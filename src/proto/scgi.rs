//! SCGI request headers: a netstring `<len>:` (name NUL value NUL)* `,` parsed
//! incrementally (a length prefix split across reads, even one byte at a time, works).
//!
//! `CONTENT_LENGTH` must come first, `SCGI` must be `1`, names are unique, and the header
//! size is bounded before anything is buffered.

use bytes::BytesMut;

use crate::proto::cgi::CgiVars;

/// Default limit on the netstring's declared length.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

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
#[derive(Clone, Debug)]
pub struct ScgiHeader {
    /// All variables, `CONTENT_LENGTH` and `SCGI` included, in wire order.
    pub vars: CgiVars,
    /// The body length declared by `CONTENT_LENGTH`.
    pub content_length: u64,
}

/// Incremental SCGI header decoder over a buffer the caller owns and appends to.
#[derive(Debug)]
pub struct ScgiDecoder {
    _todo: (),
}

impl ScgiDecoder {
    /// A decoder with the given limits.
    pub fn new(max_header_bytes: usize, max_vars: usize) -> Self {
        let _ = (max_header_bytes, max_vars);
        todo!("helper: proto")
    }

    /// Takes the header off the front of `buf` (the body stays in `buf`), or `Ok(None)` if
    /// more bytes are needed. Never rescans bytes it has already examined.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ScgiHeader>, ScgiError> {
        let _ = buf;
        todo!("helper: proto")
    }
}

/// Writes an SCGI request header (client side: tests and the load generator).
/// `CONTENT_LENGTH` and `SCGI=1` come first, then `vars`.
pub fn encode_header(out: &mut BytesMut, content_length: u64, vars: &[(&[u8], &[u8])]) {
    let _ = (out, content_length, vars);
    todo!("helper: proto")
}
