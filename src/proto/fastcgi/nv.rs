//! FastCGI name-value pairs (PARAMS, GET_VALUES, GET_VALUES_RESULT bodies).
//!
//! Lengths are 1 byte when below 128, else 4 bytes with the high bit set. The decoder is
//! incremental: a pair may be split anywhere across PARAMS records, and a declared length
//! beyond the remaining params budget is refused before any byte of it is buffered.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::cgi::CgiVars;
use crate::proto::vars::{Span, MAX_BLOCK_BYTES};

/// Largest length a pair's 4-byte length field can express (31 bits).
pub const MAX_PAIR_LEN: usize = 0x7fff_ffff;

/// Lengths up to this value use the 1-byte form.
const SHORT_LEN_MAX: usize = 0x7f;

/// Pairs the index of a new decoder has room for (nginx sends 20 to 40).
const SPANS_INITIAL: usize = 32;

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

/// A whole length field at the front of `input`: the length and the field's size, or `None`
/// if the field is not all there.
fn read_len(input: &[u8]) -> Option<(usize, usize)> {
    let &first = input.first()?;
    if first & 0x80 == 0 {
        return Some((usize::from(first), 1));
    }
    let field = input.first_chunk::<4>()?;
    Some(((u32::from_be_bytes(*field) & 0x7fff_ffff) as usize, 4))
}

/// A pair's name length, value length and the bytes their two fields take, when both fields
/// lie in `input`. Most pairs have two one-byte fields: they are read at once.
fn read_lens(input: &[u8]) -> Option<(usize, usize, usize)> {
    if let [name, value, ..] = *input {
        if (name | value) & 0x80 == 0 {
            return Some((usize::from(name), usize::from(value), 2));
        }
    }
    let (name_len, name_field) = read_len(input)?;
    let (value_len, value_field) = read_len(&input[name_field..])?;
    Some((name_len, value_len, name_field + value_field))
}

/// Where the decoder is inside the current pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Reading the name's length field (`len_have` bytes of it so far).
    NameLen,
    /// Reading the value's length field.
    ValueLen,
    /// Skipping over the `body_left` bytes of name and value still to come.
    Body,
}

/// Where a [`ParamsDecoder`] keeps the stream.
#[derive(Debug)]
enum Stream {
    /// Nothing yet.
    Empty,
    /// One chunk, as it was pushed.
    Shared(Bytes),
    /// Several chunks, copied together; the capacity never exceeds the byte budget.
    Owned(Vec<u8>),
}

/// Incremental decoder of a PARAMS stream into [`CgiVars`].
///
/// Call [`ParamsDecoder::push_shared`] (or [`ParamsDecoder::push`]) with the content of each
/// PARAMS record, then [`ParamsDecoder::finish`] on the empty PARAMS record. Every byte is
/// examined once: a small state machine remembers a length field split across records and
/// skips over names and values. The stream is kept as it arrived, length fields included, in
/// one block: the variables are spans of it, so a request costs one block and one index, not
/// an allocation per pair. A stream that arrives in one record (what front ends send) is kept
/// as that record's shared content, without a copy; a stream of several records is copied
/// into one buffer. After an error the decoder stays failed, returns the same error and holds
/// no buffer.
#[derive(Debug)]
pub struct ParamsDecoder {
    max_bytes: usize,
    max_pairs: usize,
    /// Bytes consumed so far, length fields included: the offset in the stream of the next
    /// byte, and never more than `max_bytes`.
    used: usize,
    stage: Stage,
    /// Bytes of the current length field collected so far (0..4).
    len_have: usize,
    /// The current length field, as far as it is known.
    len_bytes: [u8; 4],
    name_len: usize,
    value_len: usize,
    /// Offset in the stream of the current pair's name.
    pair_start: usize,
    /// Bytes of the current pair's name and value not seen yet.
    body_left: usize,
    /// The stream so far.
    stream: Stream,
    spans: Vec<Span>,
    failed: Option<ParamsError>,
}

impl ParamsDecoder {
    /// A decoder that refuses more than `max_bytes` of pairs (4 GiB at most) or more than
    /// `max_pairs` pairs.
    pub fn new(max_bytes: usize, max_pairs: usize) -> Self {
        Self {
            max_bytes: max_bytes.min(MAX_BLOCK_BYTES),
            max_pairs,
            used: 0,
            stage: Stage::NameLen,
            len_have: 0,
            len_bytes: [0; 4],
            name_len: 0,
            value_len: 0,
            pair_start: 0,
            body_left: 0,
            stream: Stream::Empty,
            spans: Vec::new(),
            failed: None,
        }
    }

    /// Feeds the content of one PARAMS record; complete pairs are decoded at once. The first
    /// record's content is kept as it is, without a copy (it shares, and keeps alive, the
    /// allocation it lies in).
    pub fn push_shared(&mut self, chunk: Bytes) -> Result<(), ParamsError> {
        self.check(&chunk)?;
        match self.stream {
            Stream::Empty => self.stream = Stream::Shared(chunk),
            _ => self.keep(&chunk),
        }
        Ok(())
    }

    /// Like [`Self::push_shared`], for content that is not a [`Bytes`]: it is copied.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ParamsError> {
        self.check(chunk)?;
        self.keep(chunk);
        Ok(())
    }

    /// Scans a chunk; on an error the decoder fails for good and drops what it holds.
    fn check(&mut self, chunk: &[u8]) -> Result<(), ParamsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Err(e) = self.scan(chunk) {
            self.failed = Some(e);
            // Nothing of a refused stream is needed any more.
            self.stream = Stream::Empty;
            self.spans = Vec::new();
            return Err(e);
        }
        Ok(())
    }

    /// Appends a chunk that passed [`Self::scan`] to the owned buffer (a shared first chunk
    /// is copied into it first). The first copy gets an exact allocation; later ones grow it
    /// by doubling, capped at the budget, which `scan` guarantees the stream fits in.
    fn keep(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let mut buf = match std::mem::replace(&mut self.stream, Stream::Empty) {
            Stream::Empty => Vec::new(),
            Stream::Shared(first) => first.to_vec(),
            Stream::Owned(buf) => buf,
        };
        let needed = buf.len() + chunk.len();
        if needed > buf.capacity() {
            let cap = if buf.is_empty() {
                needed
            } else {
                needed.max(buf.capacity().saturating_mul(2).min(self.max_bytes))
            };
            buf.reserve_exact(cap - buf.len());
        }
        buf.extend_from_slice(chunk);
        self.stream = Stream::Owned(buf);
    }

    fn too_large(&self) -> ParamsError {
        ParamsError::TooLarge {
            limit: self.max_bytes,
        }
    }

    /// Checks `input` and records every pair that completes in it: whole pairs at once while
    /// they fit, the rest (a pair cut by the end of the record, or one that breaks a limit)
    /// byte by byte.
    fn scan(&mut self, mut input: &[u8]) -> Result<(), ParamsError> {
        loop {
            input = self.whole_pairs(input);
            if input.is_empty() {
                return Ok(());
            }
            input = self.step(input)?;
        }
    }

    /// Takes whole pairs off the front of `input` while the decoder is between pairs and each
    /// pair, length fields included, lies in `input` and fits within both limits; returns the
    /// rest. A pair this passes, [`Self::step`] would pass too, and it records the same spans.
    /// (The hot loop of every request: it works on locals and writes the position back once.)
    fn whole_pairs<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        if self.stage != Stage::NameLen || self.len_have != 0 {
            return input;
        }
        // Offsets below are in `input`; `base` turns them into offsets in the stream.
        let base = self.used;
        let budget = self.max_bytes - self.used;
        let room = self.max_pairs.saturating_sub(self.spans.len());
        let mut pos = 0;
        for _ in 0..room {
            let Some((name_len, value_len, fields)) = read_lens(&input[pos..]) else {
                break;
            };
            // Each length is below 2^31: no overflow.
            let name_start = pos + fields;
            let name_end = name_start + name_len;
            let end = name_end + value_len;
            if end > input.len() || end > budget {
                break;
            }
            // The index is allocated at the first whole pair, not for a chunk without one.
            self.reserve_spans();
            self.spans.push(Span::new(
                base + name_start..base + name_end,
                base + name_end..base + end,
            ));
            pos = end;
        }
        self.used = base + pos;
        &input[pos..]
    }

    /// Runs the state machine over `input` until a pair completes or `input` ends; returns
    /// the rest.
    fn step<'a>(&mut self, mut input: &'a [u8]) -> Result<&'a [u8], ParamsError> {
        while let Some((&b, rest)) = input.split_first() {
            if self.stage == Stage::Body {
                let take = self.body_left.min(input.len());
                self.body_left -= take;
                self.used += take;
                input = &input[take..];
                if self.body_left == 0 {
                    self.pair_done();
                    break;
                }
                continue;
            }
            if self.stage == Stage::NameLen
                && self.len_have == 0
                && self.spans.len() >= self.max_pairs
            {
                return Err(ParamsError::TooManyPairs {
                    limit: self.max_pairs,
                });
            }
            input = rest;
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
            if self.length_done(len)? {
                break;
            }
        }
        Ok(input)
    }

    /// A whole length field has arrived: check it against the budget. `Ok(true)` when that
    /// completes a pair (an empty name and value).
    fn length_done(&mut self, len: usize) -> Result<bool, ParamsError> {
        let remaining = self.max_bytes - self.used;
        if self.stage == Stage::NameLen {
            // The value's length field still has to come: at least 1 more byte.
            if len >= remaining {
                return Err(self.too_large());
            }
            self.name_len = len;
            self.stage = Stage::ValueLen;
            return Ok(false);
        }
        if self.name_len.saturating_add(len) > remaining {
            return Err(self.too_large());
        }
        self.value_len = len;
        self.pair_start = self.used;
        self.body_left = self.name_len + len;
        if self.body_left == 0 {
            self.pair_done();
            return Ok(true);
        }
        self.stage = Stage::Body;
        Ok(false)
    }

    /// Room for a typical request's variables in one allocation, at the first pair.
    #[inline]
    fn reserve_spans(&mut self) {
        if self.spans.capacity() == 0 {
            self.spans.reserve_exact(self.max_pairs.min(SPANS_INITIAL));
        }
    }

    fn pair_done(&mut self) {
        self.reserve_spans();
        let name_end = self.pair_start + self.name_len;
        self.spans.push(Span::new(
            self.pair_start..name_end,
            name_end..name_end + self.value_len,
        ));
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
        let block = match self.stream {
            Stream::Empty => Bytes::new(),
            Stream::Shared(block) => block,
            Stream::Owned(buf) => Bytes::from(buf),
        };
        Ok(CgiVars::from_block(block, self.spans))
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
