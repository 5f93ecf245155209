//! The request-body spool of one script, and the spool budget of one root on one worker.
//!
//! A body frame shares the allocation its connection read it into, which can be much larger
//! than the frame (several records per read buffer, a buffer reserved for a whole record):
//! holding frames, a spool of 64 MiB of body held 58-99 MiB. So the spool copies what it
//! holds into blocks of [`SPOOL_BLOCK`] bytes that it allocates itself, and counts blocks:
//! what it counts is what it holds. A request holds at most `ceil(body_spool_bytes /
//! SPOOL_BLOCK)` blocks, and the scripts of one root on one worker together at most
//! `ceil(body_spool_budget_bytes / SPOOL_BLOCK)` ([`SpoolBudget`]); a block goes back to the
//! budget as soon as the script has read it.
//!
//! No I/O here: `pump::feed` moves the bytes.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};

/// The unit a spool allocates and a budget counts.
pub(super) const SPOOL_BLOCK: usize = 64 * 1024;

/// Blocks needed for `bytes` (at least one).
pub(super) fn blocks_for(bytes: usize) -> usize {
    bytes.div_ceil(SPOOL_BLOCK).max(1)
}

/// The blocks the spools of one root's scripts on one worker may hold together.
#[derive(Debug)]
pub(super) struct SpoolBudget {
    free: Cell<usize>,
}

impl SpoolBudget {
    /// A budget of `bytes`, rounded up to whole blocks.
    pub(super) fn new(bytes: usize) -> Self {
        Self {
            free: Cell::new(blocks_for(bytes)),
        }
    }

    fn take(&self) -> bool {
        match self.free.get() {
            0 => false,
            n => {
                self.free.set(n - 1);
                true
            }
        }
    }

    fn give(&self, blocks: usize) {
        self.free.set(self.free.get() + blocks);
    }

    /// Blocks not held by any spool.
    #[cfg(test)]
    pub(super) fn free_blocks(&self) -> usize {
        self.free.get()
    }
}

/// Why [`Spool::push`] took less than it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Short {
    /// The request's own limit (`body_spool_bytes`).
    Full,
    /// The root's budget on this worker (`body_spool_budget_bytes`).
    Budget,
}

/// One script's spool: bytes in the order received, oldest first.
#[derive(Debug)]
pub(super) struct Spool {
    /// Blocks no longer filled, oldest first; the front may be partly written.
    ready: VecDeque<Bytes>,
    /// The block being filled (no allocation when empty).
    tail: BytesMut,
    /// Blocks allocated (in `ready` and `tail`).
    blocks: usize,
    max_blocks: usize,
    budget: Rc<SpoolBudget>,
    len: usize,
}

impl Spool {
    /// A spool of at most `max_bytes` (rounded up to blocks) within `budget`.
    pub(super) fn new(max_bytes: usize, budget: Rc<SpoolBudget>) -> Self {
        Self {
            ready: VecDeque::new(),
            tail: BytesMut::new(),
            blocks: 0,
            max_blocks: blocks_for(max_bytes),
            budget,
            len: 0,
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies as much of `data` as fits; returns how much, and why not all of it.
    pub(super) fn push(&mut self, data: &[u8]) -> (usize, Option<Short>) {
        let mut taken = 0;
        while taken < data.len() {
            if self.tail.capacity() == 0 || self.tail.len() == SPOOL_BLOCK {
                if !self.tail.is_empty() {
                    let full = std::mem::take(&mut self.tail).freeze();
                    self.ready.push_back(full);
                }
                if self.blocks >= self.max_blocks {
                    return (taken, Some(Short::Full));
                }
                if !self.budget.take() {
                    return (taken, Some(Short::Budget));
                }
                self.blocks += 1;
                self.tail = BytesMut::with_capacity(SPOOL_BLOCK);
            }
            let n = (SPOOL_BLOCK - self.tail.len()).min(data.len() - taken);
            self.tail.extend_from_slice(&data[taken..taken + n]);
            taken += n;
            self.len += n;
        }
        (taken, None)
    }

    /// The oldest bytes (a cheap handle on them; empty when none). Hand back what was written
    /// of them with [`Spool::consumed`].
    pub(super) fn front(&mut self) -> Bytes {
        if self.ready.is_empty() && !self.tail.is_empty() {
            let partial = std::mem::take(&mut self.tail).freeze();
            self.ready.push_back(partial);
        }
        self.ready.front().cloned().unwrap_or_default()
    }

    /// `n` bytes of [`Spool::front`] were written: a block written to its end goes back.
    pub(super) fn consumed(&mut self, n: usize) {
        let Some(front) = self.ready.front_mut() else {
            return;
        };
        let n = n.min(front.len());
        front.advance(n);
        self.len -= n;
        if front.is_empty() {
            self.ready.pop_front();
            self.blocks -= 1;
            self.budget.give(1);
        }
    }

    /// Drops everything held (the script no longer reads).
    pub(super) fn clear(&mut self) {
        self.ready.clear();
        self.tail = BytesMut::new();
        self.len = 0;
        self.budget.give(std::mem::take(&mut self.blocks));
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_bounded_by_the_request_and_the_budget_and_given_back() {
        let budget = Rc::new(SpoolBudget::new(3 * SPOOL_BLOCK));
        let mut a = Spool::new(2 * SPOOL_BLOCK, budget.clone());
        let data = vec![7u8; 5 * SPOOL_BLOCK / 2];
        // The request's own limit: two blocks.
        assert_eq!(a.push(&data), (2 * SPOOL_BLOCK, Some(Short::Full)));
        assert_eq!(budget.free_blocks(), 1);
        let mut b = Spool::new(2 * SPOOL_BLOCK, budget.clone());
        assert_eq!(b.push(&data[..10]), (10, None));
        // The budget: none left for a third block.
        assert_eq!(b.push(&data), (SPOOL_BLOCK - 10, Some(Short::Budget)));
        // Written to the end of a block, the block goes back.
        let front = a.front();
        assert_eq!(front.len(), SPOOL_BLOCK);
        a.consumed(SPOOL_BLOCK - 1);
        assert_eq!(budget.free_blocks(), 0);
        a.consumed(1);
        assert_eq!(budget.free_blocks(), 1);
        assert_eq!(a.len(), SPOOL_BLOCK);
        drop(a);
        assert_eq!(budget.free_blocks(), 2);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(budget.free_blocks(), 3);
    }

    #[test]
    fn bytes_come_out_in_order_across_blocks_and_partial_fronts() {
        let budget = Rc::new(SpoolBudget::new(1 << 20));
        let mut s = Spool::new(1 << 20, budget);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() || !s.is_empty() {
            if at < data.len() {
                let end = (at + 30_000).min(data.len());
                let (n, _) = s.push(&data[at..end]);
                at += n;
            }
            let front = s.front();
            let n = front.len().min(20_000);
            out.extend_from_slice(&front[..n]);
            s.consumed(n);
        }
        assert!(out == data);
    }
}
