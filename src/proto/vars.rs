//! [`CgiVars`]: the CGI meta-variables of one request, stored as one shared block of bytes
//! (the params stream as it arrived, or the SCGI header) plus a small index of where each
//! name and value lies in it.
//!
//! Decoding a request therefore costs one copy of the params into one buffer and one `Vec`
//! of spans, instead of a reference-counted buffer per name and per value; a header value
//! or the URI that needs an owned [`Bytes`] takes a slice of the block
//! ([`CgiVars::shared`]), which shares it instead of copying.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

/// A variables block is split off the buffer it arrived in as a shared slice while that buffer
/// is at most this size, or at most [`BLOCK_SHARE_FACTOR`] times the block; a larger buffer
/// (a read that also carried a large body: epoll reads take up to 64 KiB) is copied out of
/// instead, so that the variables, which a handler holds for the request's whole life, do not
/// keep it alive.
const BLOCK_SHARE_MAX_BYTES: usize = 16 * 1024;

/// See [`BLOCK_SHARE_MAX_BYTES`].
const BLOCK_SHARE_FACTOR: usize = 4;

/// Takes the first `len` bytes off `buf` as a variables block: sharing `buf`'s allocation, or
/// a copy when that allocation is much larger than the block ([`BLOCK_SHARE_MAX_BYTES`]).
pub(crate) fn split_block(buf: &mut BytesMut, len: usize) -> Bytes {
    if len == 0 {
        return Bytes::new();
    }
    if buf.capacity() <= BLOCK_SHARE_MAX_BYTES.max(len.saturating_mul(BLOCK_SHARE_FACTOR)) {
        return buf.split_to(len).freeze();
    }
    let block = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    block
}

/// The largest variables block: offsets in it are stored as `u32`, which halves the index of
/// a request (16 bytes per variable). The decoders clamp their size limits to it.
pub(crate) const MAX_BLOCK_BYTES: usize = u32::MAX as usize;

/// Where one variable lies in the block: `block[name_start..name_end]` and
/// `block[value_start..value_end]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Span {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl Span {
    /// The span of a name and a value at these ranges of a block, the value after the name
    /// and ending at most at [`MAX_BLOCK_BYTES`] (the decoders' clamped limits and
    /// [`CgiVars::push`] see to it; a span outside its block would be caught by the bounds
    /// check of every access).
    pub(crate) fn new(name: Range<usize>, value: Range<usize>) -> Self {
        debug_assert!(
            name.start <= name.end
                && name.end <= value.start
                && value.start <= value.end
                && value.end <= MAX_BLOCK_BYTES
        );
        Self {
            name_start: name.start as u32,
            name_end: name.end as u32,
            value_start: value.start as u32,
            value_end: value.end as u32,
        }
    }

    fn name(&self) -> Range<usize> {
        self.name_start as usize..self.name_end as usize
    }

    fn value(&self) -> Range<usize> {
        self.value_start as usize..self.value_end as usize
    }

    fn fits(&self, len: usize) -> bool {
        self.name().end <= len && self.value().end <= len
    }
}

/// CGI meta-variables in arrival order. Lookups are linear: a request has a few dozen.
#[derive(Clone, Default)]
pub struct CgiVars {
    /// Every name and value lies in here (other bytes, such as FastCGI length fields or
    /// SCGI's NULs, may lie between them).
    block: Bytes,
    spans: Vec<Span>,
}

impl CgiVars {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The variables at `spans` of `block`, in that order.
    ///
    /// The decoders that call this compute the spans from the bytes they put in the block; a
    /// span outside it would be a bug of theirs (never peer input), caught here in debug
    /// builds and by the bounds check of every access in any build.
    pub(crate) fn from_block(block: Bytes, spans: Vec<Span>) -> Self {
        debug_assert!(
            spans.iter().all(|s| s.fits(block.len())),
            "CgiVars span outside its block"
        );
        Self { block, spans }
    }

    /// Appends a variable (the decoders check uniqueness where the protocol demands it).
    ///
    /// This copies `name` and `value` into the block (in place when nothing else shares it):
    /// the decoders build the variables in one go instead.
    ///
    /// # Panics
    /// If the variables would take more than 4 GiB.
    pub fn push(&mut self, name: Bytes, value: Bytes) {
        let mut block = BytesMut::from(std::mem::take(&mut self.block));
        let len = block.len() + name.len() + value.len();
        assert!(len <= MAX_BLOCK_BYTES, "variables over 4 GiB");
        block.reserve(name.len() + value.len());
        let name_start = block.len();
        block.extend_from_slice(&name);
        let value_start = block.len();
        block.extend_from_slice(&value);
        self.spans
            .push(Span::new(name_start..value_start, value_start..block.len()));
        self.block = block.freeze();
    }

    fn name(&self, s: &Span) -> &[u8] {
        &self.block[s.name()]
    }

    fn value(&self, s: &Span) -> &[u8] {
        &self.block[s.value()]
    }

    /// The value of the first variable called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        // Lengths first: most spans are passed over without touching the block.
        self.spans
            .iter()
            .filter(|s| s.name().len() == name.len())
            .find(|s| self.name(s) == name)
            .map(|s| self.value(s))
    }

    /// The value of `name` if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The names of all variables, in arrival order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|s| self.name(s))
    }

    /// All variables in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|s| (self.name(s), self.value(s)))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `part` (a name or value returned by [`Self::get`] or [`Self::iter`]) as a [`Bytes`]
    /// that shares the block instead of copying it.
    ///
    /// # Panics
    /// If `part` is not empty and does not lie inside this set's block.
    pub fn shared(&self, part: &[u8]) -> Bytes {
        self.block.slice_ref(part)
    }
}

impl PartialEq for CgiVars {
    /// The same names and values in the same order, however they are stored.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for CgiVars {}

impl fmt::Debug for CgiVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_iter() {
        let mut v = CgiVars::new();
        v.push(Bytes::from_static(b"A"), Bytes::from_static(b"1"));
        v.push(Bytes::from_static(b"B"), Bytes::new());
        v.push(Bytes::from_static(b"A"), Bytes::from_static(b"2"));
        assert_eq!(v.len(), 3);
        assert_eq!(v.get("A"), Some(&b"1"[..]));
        assert_eq!(v.get_str("B"), Some(""));
        assert_eq!(v.get("C"), None);
        let all: Vec<_> = v.iter().collect();
        assert_eq!(all, [(&b"A"[..], &b"1"[..]), (b"B", b""), (b"A", b"2")]);
        let shared = v.shared(v.get("A").unwrap());
        assert_eq!(shared, "1");
    }

    #[test]
    fn equality_ignores_the_layout() {
        let block = Bytes::from_static(b"xxNAMEvalueyy");
        let a = CgiVars::from_block(block, vec![Span::new(2..6, 6..11)]);
        let mut b = CgiVars::new();
        b.push(Bytes::from_static(b"NAME"), Bytes::from_static(b"value"));
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), r#"[("NAME", "value")]"#);
        b.push(Bytes::new(), Bytes::new());
        assert_ne!(a, b);
    }

    #[test]
    fn a_clone_shares_the_block_and_pushing_to_it_leaves_the_original() {
        let mut a = CgiVars::new();
        a.push(Bytes::from_static(b"A"), Bytes::from_static(b"1"));
        let mut b = a.clone();
        b.push(Bytes::from_static(b"B"), Bytes::from_static(b"2"));
        assert_eq!(a.len(), 1);
        assert_eq!(b.get("A"), Some(&b"1"[..]));
        assert_eq!(b.get("B"), Some(&b"2"[..]));
    }

    #[test]
    fn a_block_shares_a_buffer_up_to_16_kib_or_four_times_its_size() {
        let shares = |capacity: usize, len: usize| {
            let mut buf = BytesMut::with_capacity(capacity);
            buf.extend_from_slice(&vec![b'v'; capacity]);
            let range = buf.as_ptr_range();
            let block = split_block(&mut buf, len);
            assert_eq!((block.len(), buf.len()), (len, capacity - len));
            assert!(block.iter().all(|&b| b == b'v'));
            range.contains(&block.as_ptr())
        };
        // One read of a request or of a few multiplexed ones: shared.
        assert!(shares(1_200, 1_100));
        assert!(shares(BLOCK_SHARE_MAX_BYTES, 1_100));
        // A read that also carried a large body: copied.
        assert!(!shares(BLOCK_SHARE_MAX_BYTES + 1, 1_100));
        assert!(!shares(64 * 1024, 1_100));
        // A large block: shared while the buffer is at most four times it.
        assert!(shares(40_000, 10_000));
        assert!(!shares(40_001, 10_000));
        assert!(split_block(&mut BytesMut::from(&b"x"[..]), 0).is_empty());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "outside its block")]
    fn a_span_outside_the_block_is_a_bug() {
        CgiVars::from_block(Bytes::from_static(b"ab"), vec![Span::new(0..1, 1..3)]);
    }
}
