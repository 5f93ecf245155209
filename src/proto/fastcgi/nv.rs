//! FastCGI name-value pairs (PARAMS, GET_VALUES, GET_VALUES_RESULT bodies).
//!
//! Lengths are 1 byte when below 128, else 4 bytes with the high bit set. The decoder is
//! incremental: a pair may be split anywhere across PARAMS records, and a declared length
//! beyond the remaining params budget is refused before any byte of it is buffered.

use bytes::{BufMut, BytesMut};

use crate::proto::cgi::CgiVars;

/// Largest length a pair's 4-byte length field can express (31 bits).
pub const MAX_PAIR_LEN: usize = 0x7fff_ffff;

/// Lengths up to this value use the 1-byte form.
const SHORT_LEN_MAX: usize = 0x7f;

/// Smallest allocation for pair bytes, so the pairs of a typical request share a few buffers.
const PAIR_BUF_CHUNK: usize = 2048;

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

/// Bytes one length field takes on the wire.
fn len_field_size(len: usize) -> usize {
    if len <= SHORT_LEN_MAX {
        1
    } else {
        4
    }
}

/// Bytes [`encode_pair`] writes for this pair.
pub fn encoded_pair_len(name: &[u8], value: &[u8]) -> usize {
    len_field_size(name.len()) + len_field_size(value.len()) + name.len() + value.len()
}

fn put_len(out: &mut BytesMut, len: usize) {
    if len <= SHORT_LEN_MAX {
        // Checked just above: fits in 7 bits.
        out.put_u8(len as u8);
    } else {
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l as usize <= MAX_PAIR_LEN)
            .expect("name-value pair length over 0x7fffffff bytes");
        out.put_u32(len | 0x8000_0000);
    }
}

/// Writes one name-value pair.
///
/// # Panics
/// If `name` or `value` is longer than [`MAX_PAIR_LEN`] (2 GiB - 1): the wire format cannot
/// express it. Only the application encodes pairs (GET_VALUES_RESULT, clients), and no
/// sensible caller gets near that size, so this is a caller bug, never peer input.
pub fn encode_pair(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(encoded_pair_len(name, value));
    put_len(out, name.len());
    put_len(out, value.len());
    out.put_slice(name);
    out.put_slice(value);
}

/// Where the decoder is inside the current pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Reading the name's length field (`have` bytes of it so far).
    NameLen,
    /// Reading the value's length field.
    ValueLen,
    /// Copying `name_len + value_len` bytes of name and value into `buf`.
    Body,
}

/// Incremental decoder of a PARAMS stream into [`CgiVars`].
///
/// Call [`ParamsDecoder::push`] with the content of each PARAMS record, then
/// [`ParamsDecoder::finish`] on the empty PARAMS record. Every byte is examined once: a small
/// state machine remembers a length field split across records. After an error the decoder
/// stays failed and returns the same error.
#[derive(Debug)]
pub struct ParamsDecoder {
    max_bytes: usize,
    max_pairs: usize,
    /// Bytes consumed so far, length fields included.
    used: usize,
    stage: Stage,
    /// Bytes of the current length field collected so far (0..4).
    len_have: usize,
    /// The current length field, as far as it is known.
    len_bytes: [u8; 4],
    name_len: usize,
    value_len: usize,
    /// Name then value of the current pair; split off and frozen when it is complete.
    buf: BytesMut,
    vars: CgiVars,
    failed: Option<ParamsError>,
}

impl ParamsDecoder {
    /// A decoder that refuses more than `max_bytes` of pairs or more than `max_pairs` pairs.
    pub fn new(max_bytes: usize, max_pairs: usize) -> Self {
        Self {
            max_bytes,
            max_pairs,
            used: 0,
            stage: Stage::NameLen,
            len_have: 0,
            len_bytes: [0; 4],
            name_len: 0,
            value_len: 0,
            buf: BytesMut::new(),
            vars: CgiVars::new(),
            failed: None,
        }
    }

    /// Feeds the content of one PARAMS record; complete pairs are decoded at once.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ParamsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.push_inner(chunk);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn too_large(&self) -> ParamsError {
        ParamsError::TooLarge {
            limit: self.max_bytes,
        }
    }

    fn push_inner(&mut self, mut input: &[u8]) -> Result<(), ParamsError> {
        while !input.is_empty() {
            match self.stage {
                Stage::NameLen | Stage::ValueLen => {
                    if self.stage == Stage::NameLen
                        && self.len_have == 0
                        && self.vars.len() >= self.max_pairs
                    {
                        return Err(ParamsError::TooManyPairs {
                            limit: self.max_pairs,
                        });
                    }
                    let b = input[0];
                    input = &input[1..];
                    if self.used >= self.max_bytes {
                        return Err(self.too_large());
                    }
                    self.used += 1;
                    let len = if self.len_have == 0 && b & 0x80 == 0 {
                        usize::from(b)
                    } else {
                        self.len_bytes[self.len_have] = b;
                        self.len_have += 1;
                        if self.len_have < 4 {
                            continue;
                        }
                        self.len_have = 0;
                        (u32::from_be_bytes(self.len_bytes) & 0x7fff_ffff) as usize
                    };
                    self.length_done(len)?;
                }
                Stage::Body => {
                    let total = self.name_len + self.value_len;
                    let take = (total - self.buf.len()).min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    self.used += take;
                    input = &input[take..];
                    if self.buf.len() == total {
                        self.pair_done();
                    }
                }
            }
        }
        Ok(())
    }

    /// A whole length field has arrived: check it against the budget before buffering.
    fn length_done(&mut self, len: usize) -> Result<(), ParamsError> {
        let remaining = self.max_bytes - self.used;
        if self.stage == Stage::NameLen {
            // The value's length field still has to come: at least 1 more byte.
            if len >= remaining {
                return Err(self.too_large());
            }
            self.name_len = len;
            self.stage = Stage::ValueLen;
            return Ok(());
        }
        if self.name_len.saturating_add(len) > remaining {
            return Err(self.too_large());
        }
        self.value_len = len;
        let total = self.name_len + len;
        if total == 0 {
            self.pair_done();
        } else {
            // Let several small pairs share one allocation (the room left after the last
            // pair was split off); a new one is never larger than the budget left.
            if self.buf.capacity() < total {
                self.buf = BytesMut::with_capacity(total.max(PAIR_BUF_CHUNK.min(remaining)));
            }
            self.stage = Stage::Body;
        }
        Ok(())
    }

    fn pair_done(&mut self) {
        let name = self.buf.split_to(self.name_len).freeze();
        let value = self.buf.split().freeze();
        self.vars.push(name, value);
        self.stage = Stage::NameLen;
    }

    /// Ends the stream (the empty PARAMS record) and returns the variables.
    pub fn finish(self) -> Result<CgiVars, ParamsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.stage != Stage::NameLen || self.len_have != 0 {
            return Err(ParamsError::Truncated);
        }
        Ok(self.vars)
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

#[cfg(test)]
#[path = "nv_tests.rs"]
mod tests;
