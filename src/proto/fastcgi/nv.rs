//! FastCGI name-value pairs (PARAMS, GET_VALUES, GET_VALUES_RESULT bodies).
//!
//! Lengths are 1 byte when below 128, else 4 bytes with the high bit set. The decoder is
//! incremental: a pair may be split anywhere across PARAMS records, and a declared length
//! beyond the remaining params budget is refused before any byte of it is buffered.

use bytes::BytesMut;

use crate::proto::cgi::CgiVars;

/// Why a params stream was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ParamsError {
    /// The pairs (lengths included) exceed the params byte limit.
    #[error("params exceed {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// More pairs than the pair-count limit.
    #[error("more than {limit} params")]
    TooManyPairs {
        /// The configured limit.
        limit: usize,
    },
    /// The stream ended in the middle of a pair.
    #[error("params stream ends inside a name-value pair")]
    Truncated,
}

/// Writes one name-value pair.
pub fn encode_pair(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    let _ = (out, name, value);
    todo!("helper: proto")
}

/// Incremental decoder of a PARAMS stream into [`CgiVars`].
#[derive(Debug)]
pub struct ParamsDecoder {
    _todo: (),
}

impl ParamsDecoder {
    /// A decoder that refuses more than `max_bytes` of pairs or more than `max_pairs` pairs.
    pub fn new(max_bytes: usize, max_pairs: usize) -> Self {
        let _ = (max_bytes, max_pairs);
        todo!("helper: proto")
    }

    /// Feeds the content of one PARAMS record; complete pairs are decoded at once.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ParamsError> {
        let _ = chunk;
        todo!("helper: proto")
    }

    /// Ends the stream (the empty PARAMS record) and returns the variables.
    pub fn finish(self) -> Result<CgiVars, ParamsError> {
        todo!("helper: proto")
    }

    /// Decodes one complete body (GET_VALUES, GET_VALUES_RESULT) under the same limits.
    pub fn decode_all(
        content: &[u8],
        max_bytes: usize,
        max_pairs: usize,
    ) -> Result<CgiVars, ParamsError> {
        let mut d = Self::new(max_bytes, max_pairs);
        d.push(content)?;
        d.finish()
    }
}
