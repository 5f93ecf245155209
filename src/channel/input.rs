//! The bounded buffer behind one input stream of a request (the body, or FILTER's DATA).
//! The engine stops reading the socket while any buffer is at its bound; the application
//! drains it through `Channel::poll_body`.

use std::collections::VecDeque;

use bytes::Bytes;

use super::BodyChunk;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    Ended,
    Broken,
}

#[derive(Debug)]
pub(crate) struct InputBuffer {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    state: State,
    /// The reader saw `Pending` and waits for an `Event::BodyReadable`.
    reader_waiting: bool,
}

impl InputBuffer {
    pub(crate) fn new() -> Self {
        Self {
            chunks: VecDeque::new(),
            buffered: 0,
            state: State::Open,
            reader_waiting: false,
        }
    }

    /// A stream that is already complete (e.g. a request declared without a body).
    pub(crate) fn ended() -> Self {
        let mut b = Self::new();
        b.state = State::Ended;
        b
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Appends bytes; returns whether a waiting reader must be woken.
    pub(crate) fn push(&mut self, data: Bytes) -> bool {
        if self.state != State::Open || data.is_empty() {
            return false;
        }
        self.buffered += data.len();
        self.chunks.push_back(data);
        std::mem::take(&mut self.reader_waiting)
    }

    /// Ends the stream normally; returns whether a waiting reader must be woken.
    pub(crate) fn end(&mut self) -> bool {
        if self.state == State::Open {
            self.state = State::Ended;
        }
        std::mem::take(&mut self.reader_waiting)
    }

    /// The stream can never complete; returns whether a waiting reader must be woken.
    pub(crate) fn break_off(&mut self) -> bool {
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
