//! The send queue of one connection: encoded bytes waiting for the socket, the high-water
//! mark above which response producers are paused, and the fair, FIFO list of paused
//! producers (every pause is reported as a producer stall when it ends). Pausing, resuming
//! and forgetting a producer cost O(1) however many are paused: membership is a set, and a
//! forgotten producer's place in the FIFO is skipped when its turn comes.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{Event, RequestKey, Stat};

/// Capacity of a new encode buffer (one is started after each hand-over to the driver).
const ENCODE_BUFFER_CAPACITY: usize = 4096;

#[derive(Debug)]
pub(crate) struct SendQueue {
    buf: BytesMut,
    in_flight: usize,
    high_water: usize,
    stalled: VecDeque<(RequestKey, Instant)>,
    /// The producers paused now: those of `stalled` that were not forgotten since.
    paused: HashSet<RequestKey>,
}

impl SendQueue {
    pub(crate) fn new(high_water: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            in_flight: 0,
            high_water,
            stalled: VecDeque::new(),
            paused: HashSet::new(),
        }
    }

    /// Where encoders append. A new encode buffer starts with room for a typical reply, so
    /// that a small response is encoded without reallocations.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::with_capacity(ENCODE_BUFFER_CAPACITY);
        }
        &mut self.buf
    }

    pub(crate) fn queued(&self) -> usize {
        self.buf.len() + self.in_flight
    }

    /// Whether the queue is at or above its mark: producers wait, and the engine reads and
    /// decodes nothing more from the peer until it drains.
    pub(crate) fn over_high_water(&self) -> bool {
        self.queued() >= self.high_water
    }

    /// `true` when `key` may produce now; otherwise `key` joins the back of the paused list.
    pub(crate) fn poll_produce(&mut self, key: RequestKey, now: Instant) -> bool {
        if !self.over_high_water() {
            return true;
        }
        if self.paused.insert(key) {
            self.stalled.push_back((key, now));
        }
        false
    }

    /// Hands everything encoded so far to the driver, allocation and all: the queue keeps no
    /// part of it, so the memory goes as soon as the driver has sent it, and an idle connection
    /// holds no encode buffer (the next reply allocates a new one).
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        let out = std::mem::take(&mut self.buf).freeze();
        self.in_flight += out.len();
        Some(out)
    }

    /// `n` bytes left the process; producers paused in FIFO order resume once below the mark.
    pub(crate) fn sent(&mut self, n: usize, now: Instant, events: &mut VecDeque<Event>) {
        self.in_flight = self.in_flight.saturating_sub(n);
        if !self.over_high_water() {
            // Wake every paused producer, oldest first: one that finds the queue full again
            // re-joins at the back, which makes the order round-robin.
            while let Some((key, since)) = self.stalled.pop_front() {
                if !self.paused.remove(&key) {
                    continue; // Forgotten: its request ended.
                }
                events.push_back(Event::Stat(Stat::ProducerStall {
                    duration: now.saturating_duration_since(since),
                }));
                events.push_back(Event::Writable(key));
            }
        }
    }

    /// A request ended: it waits for nothing any more.
    pub(crate) fn forget(&mut self, key: RequestKey) {
        // Its entry in `stalled` stays until its turn (at most one per request that ended
        // while paused: no new request is decoded while the queue is over its mark).
        if self.paused.remove(&key) && self.paused.is_empty() {
            self.stalled = VecDeque::new();
            self.paused = HashSet::new();
        }
    }

    /// The driver could not send: nothing will ever drain.
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
        self.in_flight = 0;
        self.stalled.clear();
        self.paused.clear();
    }
}
