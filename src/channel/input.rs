//! The bounded buffer behind one input stream of a request (the body, or FILTER's DATA), and
//! the body-length rule every engine applies through it.
//!
//! The engine stops reading the socket while any buffer is at its bound; the application
//! drains it through `Channel::poll_body`.
//!
//! **The body-length rule** (CGI/1.1, RFC 3875 section 4.2: the script reads exactly
//! `CONTENT_LENGTH` bytes), the same for every handler and every protocol:
//! - With a declared length, the application gets exactly that many bytes, and the end of the
//!   body as soon as it has them (it need not wait for the peer's end of stream).
//! - Bytes beyond it are dropped, never handed on; the engine counts them once per request
//!   (`data_after_body`).
//! - A stream that ends before the declared length (FastCGI's empty STDIN record, SCGI's or
//!   CGI's end of input) is a short body: the application reads `Broken` (a body error), so it
//!   cannot answer as if the body were complete, and the engine counts it (`short_body`).
//! - Without a declared length (FastCGI with no or an empty `CONTENT_LENGTH`: nginx sends an
//!   empty one for a chunked body it streams), the body runs to the peer's end of stream.

use std::collections::VecDeque;

use bytes::Bytes;

use super::BodyChunk;

/// What the reader sees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    Ended,
    Broken,
}

/// What one call changed, for the engine to act on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Update {
    /// A reader waits for an `Event::BodyReadable`.
    pub(crate) wake: bool,
    /// Bytes beyond the declared length arrived, for the first time in this stream.
    pub(crate) first_excess: bool,
    /// The stream ended before the declared length.
    pub(crate) short: bool,
}

#[derive(Debug)]
pub(crate) struct InputBuffer {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    state: State,
    /// The reader saw `Pending` and waits for an `Event::BodyReadable`.
    reader_waiting: bool,
    /// Bytes of the declared length not received yet; `None` when no length was declared
    /// (the peer's end of stream ends the body).
    remaining: Option<u64>,
    /// The peer has not ended the stream yet (it may still send its end, or bytes past a
    /// declared length, after the reader saw the end).
    wire_open: bool,
    /// Bytes beyond the declared length arrived (dropped).
    excess: bool,
}

impl InputBuffer {
    /// A stream whose length is not known yet: it runs to the peer's end of stream unless
    /// [`InputBuffer::declare`] sets one.
    pub(crate) fn new() -> Self {
        Self {
            chunks: VecDeque::new(),
            buffered: 0,
            state: State::Open,
            reader_waiting: false,
            remaining: None,
            wire_open: true,
            excess: false,
        }
    }

    /// A stream that is already complete (e.g. a request declared without a body).
    pub(crate) fn ended() -> Self {
        let mut b = Self::new();
        b.state = State::Ended;
        b.wire_open = false;
        b
    }

    /// A stream of exactly `length` bytes.
    pub(crate) fn with_length(length: u64) -> Self {
        let mut b = Self::new();
        b.declare(length);
        b
    }

    /// Declares the stream's length once the head that carries it is complete. Bytes that
    /// arrived before (a peer that sent its body early) count against it; any beyond it are
    /// dropped.
    pub(crate) fn declare(&mut self, length: u64) -> Update {
        let mut update = Update::default();
        let have = self.buffered as u64;
        if have > length {
            // Keep the first `length` bytes: drop whole chunks from the back, then cut one.
            let mut surplus = have - length;
            while surplus > 0 {
                let Some(last) = self.chunks.back_mut() else {
                    break;
                };
                let len = last.len() as u64;
                if len <= surplus {
                    surplus -= len;
                    self.buffered -= last.len();
                    self.chunks.pop_back();
                } else {
                    // surplus < len <= usize::MAX, so both casts are exact.
                    let keep = (len - surplus) as usize;
                    self.buffered -= last.len() - keep;
                    last.truncate(keep);
                    surplus = 0;
                }
            }
            update.first_excess = !std::mem::replace(&mut self.excess, true);
        }
        self.remaining = Some(length.saturating_sub(have));
        if self.remaining == Some(0) && self.state == State::Open {
            self.state = State::Ended;
            update.wake = std::mem::take(&mut self.reader_waiting);
        } else if !self.wire_open && self.state != State::Broken && self.remaining != Some(0) {
            // The peer ended the stream (which then read as complete) before its head said
            // how long it was, and it is short of that.
            self.state = State::Broken;
            update.short = true;
            update.wake = std::mem::take(&mut self.reader_waiting);
        }
        update
    }

    /// Whether the reader may still get bytes (the stream has not ended for it).
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the peer may still send on this stream (it has not sent its end).
    pub(crate) fn wire_open(&self) -> bool {
        self.wire_open
    }

    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Appends bytes from the peer, up to the declared length.
    pub(crate) fn push(&mut self, mut data: Bytes) -> Update {
        let mut update = Update::default();
        if !self.wire_open || data.is_empty() {
            return update;
        }
        if let Some(remaining) = &mut self.remaining {
            let len = data.len() as u64;
            if len > *remaining {
                // remaining < len <= usize::MAX, so the cast is exact.
                data.truncate(*remaining as usize);
                update.first_excess = !std::mem::replace(&mut self.excess, true);
            }
            *remaining -= data.len() as u64;
        }
        if self.state != State::Open {
            return update;
        }
        if !data.is_empty() {
            self.buffered += data.len();
            self.chunks.push_back(data);
            update.wake = true;
        }
        if self.remaining == Some(0) {
            self.state = State::Ended;
            update.wake = true;
        }
        update.wake &= std::mem::take(&mut self.reader_waiting);
        update
    }

    /// The peer ended the stream: the body is complete, or short of its declared length.
    pub(crate) fn end(&mut self) -> Update {
        let mut update = Update::default();
        self.wire_open = false;
        if self.state == State::Open {
            update.short = self.remaining.is_some_and(|r| r > 0);
            self.state = if update.short {
                State::Broken
            } else {
                State::Ended
            };
        }
        update.wake = std::mem::take(&mut self.reader_waiting);
        update
    }

    /// The stream can never complete; returns whether a waiting reader must be woken.
    pub(crate) fn break_off(&mut self) -> bool {
        self.wire_open = false;
        if self.state == State::Open {
            self.state = State::Broken;
        }
        std::mem::take(&mut self.reader_waiting)
    }

    pub(crate) fn pop(&mut self) -> BodyChunk {
        if let Some(chunk) = self.chunks.pop_front() {
            self.buffered -= chunk.len();
            return BodyChunk::Data(chunk);
        }
        match self.state {
            State::Open => {
                self.reader_waiting = true;
                BodyChunk::Pending
            }
            State::Ended => BodyChunk::End,
            State::Broken => BodyChunk::Broken,
        }
    }
}

/// Frees `input`'s allocation once every byte of it was consumed, so that a connection waiting
/// for its next bytes holds no buffer (what was split off it stays valid: it shares the
/// allocation, which lives until the last part is dropped).
pub(crate) fn release_if_empty(input: &mut bytes::BytesMut) {
    if input.is_empty() && input.capacity() > 0 {
        *input = bytes::BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut InputBuffer) -> (Vec<u8>, BodyChunk) {
        let mut out = Vec::new();
        loop {
            match b.pop() {
                BodyChunk::Data(d) => out.extend_from_slice(&d),
                last => return (out, last),
            }
        }
    }

    #[test]
    fn a_declared_length_ends_the_body_at_that_length_and_drops_the_rest_once_counted() {
        let mut b = InputBuffer::with_length(5);
        assert_eq!(b.pop(), BodyChunk::Pending);
        let u = b.push(Bytes::from_static(b"abc"));
        assert!(u.wake && !u.first_excess);
        let u = b.push(Bytes::from_static(b"defgh"));
        assert!(u.first_excess, "bytes past the length are reported");
        let u = b.push(Bytes::from_static(b"ijk"));
        assert!(!u.first_excess, "reported once per stream");
        assert_eq!(drain(&mut b), (b"abcde".to_vec(), BodyChunk::End));
        assert_eq!(b.buffered(), 0);
        // The peer's own end comes later and changes nothing.
        assert!(b.wire_open());
        assert_eq!(b.end(), Update::default());
        assert!(!b.wire_open());
    }

    #[test]
    fn the_end_of_the_body_is_readable_at_its_length_before_the_peer_ends_it() {
        let mut b = InputBuffer::with_length(3);
        assert_eq!(b.pop(), BodyChunk::Pending);
        assert!(b.push(Bytes::from_static(b"xyz")).wake);
        assert!(!b.is_open());
        assert_eq!(drain(&mut b), (b"xyz".to_vec(), BodyChunk::End));
    }

    #[test]
    fn a_stream_that_ends_short_of_its_length_is_broken() {
        let mut b = InputBuffer::with_length(100);
        b.push(Bytes::from_static(b"hello"));
        let u = b.end();
        assert!(u.short);
        assert_eq!(drain(&mut b), (b"hello".to_vec(), BodyChunk::Broken));
    }

    #[test]
    fn a_length_of_zero_is_an_empty_body_and_anything_sent_is_excess() {
        let mut b = InputBuffer::with_length(0);
        assert_eq!(b.pop(), BodyChunk::End);
        assert!(b.push(Bytes::from_static(b"junk")).first_excess);
        assert!(!b.end().short);
        assert_eq!(b.pop(), BodyChunk::End);
    }

    #[test]
    fn without_a_length_the_body_runs_to_the_end_of_stream() {
        let mut b = InputBuffer::new();
        b.push(Bytes::from_static(b"abc"));
        b.push(Bytes::from_static(b"def"));
        assert!(b.is_open());
        assert!(!b.end().short);
        assert_eq!(drain(&mut b), (b"abcdef".to_vec(), BodyChunk::End));
    }

    #[test]
    fn a_length_declared_after_early_bytes_keeps_only_that_many() {
        let mut b = InputBuffer::new();
        b.push(Bytes::from_static(b"abc"));
        b.push(Bytes::from_static(b"defg"));
        b.push(Bytes::from_static(b"hi"));
        let u = b.declare(5);
        assert!(u.first_excess);
        assert_eq!(b.buffered(), 5);
        assert_eq!(drain(&mut b), (b"abcde".to_vec(), BodyChunk::End));

        let mut short = InputBuffer::new();
        short.push(Bytes::from_static(b"ab"));
        short.end();
        assert!(short.declare(5).short);
        assert_eq!(drain(&mut short), (b"ab".to_vec(), BodyChunk::Broken));

        for ended in [false, true] {
            let mut exact = InputBuffer::new();
            exact.push(Bytes::from_static(b"ab"));
            if ended {
                exact.end();
            }
            assert_eq!(exact.declare(2), Update::default());
            assert_eq!(drain(&mut exact), (b"ab".to_vec(), BodyChunk::End));
        }
    }

    #[test]
    fn a_broken_off_stream_stays_broken() {
        let mut b = InputBuffer::with_length(10);
        b.push(Bytes::from_static(b"abc"));
        b.break_off();
        assert_eq!(b.push(Bytes::from_static(b"def")), Update::default());
        assert_eq!(drain(&mut b), (b"abc".to_vec(), BodyChunk::Broken));
    }
}
