//! The worker's spare read buffers: a connection borrows one only for the moment bytes are
//! waiting on its socket, hands the bytes to its engine (which keeps what it has not consumed)
//! and gives the buffer back before it waits again. An idle connection therefore holds no read
//! buffer, and a worker holds about as many as it has connections reading at the same instant
//! (on one thread: one, plus the few kept spare).

use std::cell::RefCell;

/// Bytes of one spare read buffer: what one read may take from a socket.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Spare buffers kept per worker thread once given back.
const KEPT: usize = 4;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for [`READ_BUFFER_BYTES`].
pub fn take() -> Vec<u8> {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(READ_BUFFER_BYTES))
}

/// Gives `buf` back for the next read of any connection of this worker.
pub fn give(mut buf: Vec<u8>) {
    buf.clear();
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.len() < KEPT && buf.capacity() >= READ_BUFFER_BYTES {
            spare.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_are_reused() {
        let mut a = take();
        a.extend_from_slice(b"bytes");
        let ptr = a.as_ptr();
        give(a);
        let b = take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.capacity() >= READ_BUFFER_BYTES);
    }
}
