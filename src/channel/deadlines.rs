//! The deadlines of one connection's requests: a min-heap of `(time, slot, generation)` with
//! lazy deletion, so that arming a deadline, finding the earliest one and expiring one cost
//! O(log n) however many requests are in flight, and moving a deadline later costs nothing.
//!
//! An entry is a lower bound, never the deadline itself: its owner keeps, per request, the
//! time of the one entry that is current for it, and a request's real deadline may only lie at
//! or after that entry. When an entry comes due, the owner checks it against the request: an
//! entry that is no longer current (the request ended, or was re-armed earlier) is dropped;
//! a current one either expires the request or is pushed again at the real deadline. Stale
//! entries are dropped in one pass once they outnumber the live ones, so the heap stays within
//! twice the requests in flight (plus a constant) whatever the peer does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Entries kept beyond twice the live ones before stale entries are dropped.
const SLACK: usize = 32;

/// One armed deadline: the request's engine slot and the generation that was in it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Entry {
    pub(crate) at: Instant,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// The armed deadlines of one connection's requests.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Deadlines {
    /// Arms a deadline. The caller records `entry.at` as the request's current entry.
    pub(crate) fn push(&mut self, entry: Entry) {
        self.heap.push(Reverse(entry));
    }

    /// The earliest entry's time: no request's deadline lies before it.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|e| e.0)
    }

    /// Drops stale entries once there are more than twice `live` (plus [`SLACK`]): amortized,
    /// each pass costs what the pushes since the last one did.
    pub(crate) fn compact(&mut self, live: usize, is_current: impl Fn(&Entry) -> bool) {
        if self.heap.len() > 2 * live + SLACK {
            self.heap.retain(|e| is_current(&e.0));
        }
    }

    /// Forgets every entry and gives the memory back (nothing is in flight).
    pub(crate) fn clear(&mut self) {
        self.heap = BinaryHeap::new();
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_come_due_in_order_and_stale_ones_are_dropped() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        for (slot, ms) in [(0, 30), (1, 10), (2, 20)] {
            d.push(Entry {
                at: at(ms),
                slot,
                generation: 0,
            });
        }
        assert_eq!(d.next(), Some(at(10)));
        assert_eq!(d.pop_due(at(5)), None);
        assert_eq!(d.pop_due(at(25)).map(|e| e.slot), Some(1));
        assert_eq!(d.pop_due(at(25)).map(|e| e.slot), Some(2));
        assert_eq!(d.pop_due(at(25)), None);
        for slot in 0..100 {
            d.push(Entry {
                at: at(50),
                slot,
                generation: 1,
            });
        }
        // Only slot 0's first entry is current: the rest go in one pass.
        d.compact(1, |e| e.slot == 0 && e.generation == 0);
        assert_eq!(d.len(), 1);
        d.clear();
        assert_eq!(d.next(), None);
    }
}
