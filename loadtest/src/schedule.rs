//! When requests go out and which ones: the per-thread [`Dispenser`] of [`Ticket`]s for the
//! closed loop (send when a slot frees up) and the open loop (send at fixed intended times,
//! the way wrk2 corrects coordinated omission), and the deterministic weighted [`Mix`].

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// How early a request may go out before its intended time. Timers fire on millisecond
/// ticks and round deadlines up, so waking exactly on time is impossible: waking up to this
/// much early, and measuring an early request from its actual send, keeps the timer's
/// granularity out of the measured latency.
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Permission to send one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// When the request should go out; latency is measured from here.
    pub intended: Instant,
    /// Index of the request spec to send.
    pub spec: usize,
    /// False for warmup requests, which are not counted.
    pub recorded: bool,
}

impl Ticket {
    /// When the request may go out ([`TIMER_SLACK`] before its intended time).
    pub fn due(&self) -> Instant {
        self.intended
            .checked_sub(TIMER_SLACK)
            .unwrap_or(self.intended)
    }

    /// Where latency starts for a request sent at `sent`: the intended time, which in a
    /// closed loop is when the ticket was taken (so a connect made for the request counts)
    /// and in an open loop is the schedule (so the wait of a late request counts, as wrk2
    /// counts it); the send itself for an open-loop request that went out early.
    pub fn latency_origin(&self, sent: Instant, open_loop: bool) -> Instant {
        if open_loop {
            self.intended.min(sent)
        } else {
            self.intended
        }
    }
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Closed loop: a slot sends its next request as soon as the previous one ended.
    Closed,
    /// Open loop: `rate` requests per second over all threads; this thread takes every
    /// `stride`-th send time starting at `phase`, so the threads' times interleave evenly.
    Open {
        /// Requests per second over all threads.
        rate: f64,
        /// This thread's index.
        phase: u64,
        /// Number of threads.
        stride: u64,
    },
}

/// Smooth weighted round-robin (as nginx balances upstreams): exact proportions, evenly
/// spread, no randomness, so two runs send the same sequence.
#[derive(Clone, Debug)]
pub struct Mix {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Mix {
    /// A mix over `weights` (zero weights are never picked; all zero picks index 0).
    pub fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w)).collect();
        Self {
            current: vec![0; weights.len()],
            total: weights.iter().sum(),
            weights,
        }
    }

    /// The next index.
    pub fn pick(&mut self) -> usize {
        if self.total == 0 {
            return 0;
        }
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

/// One thread's source of tickets. Not `Sync`: each thread has its own.
#[derive(Debug)]
pub struct Dispenser {
    start: Instant,
    warmup_end: Instant,
    end: Option<Instant>,
    limit: Option<u64>,
    pace: Pace,
    issued: Cell<u64>,
    next_index: Cell<u64>,
    mix: RefCell<Mix>,
}

impl Dispenser {
    /// Tickets from `start`; those before `start + warmup` are not recorded; none is issued
    /// for a send time at or after `start + warmup + duration`, nor past `limit` recorded
    /// tickets.
    pub fn new(
        start: Instant,
        warmup: Duration,
        duration: Option<Duration>,
        limit: Option<u64>,
        pace: Pace,
        mix: Mix,
    ) -> Self {
        let warmup_end = start + warmup;
        Self {
            start,
            warmup_end,
            end: duration.map(|d| warmup_end + d),
            limit,
            pace,
            issued: Cell::new(0),
            next_index: Cell::new(0),
            mix: RefCell::new(mix),
        }
    }

    /// The next ticket, or `None` when the run is over for this thread.
    pub fn next(&self, now: Instant) -> Option<Ticket> {
        let intended = match self.pace {
            Pace::Closed => now,
            Pace::Open {
                rate,
                phase,
                stride,
            } => {
                let j = self.next_index.get();
                let k = j * stride + phase;
                self.start + Duration::from_secs_f64(k as f64 / rate)
            }
        };
        let recorded = intended >= self.warmup_end;
        if recorded {
            if self.end.is_some_and(|end| intended >= end) {
                return None;
            }
            if self.limit.is_some_and(|l| self.issued.get() >= l) {
                return None;
            }
            self.issued.set(self.issued.get() + 1);
        }
        self.next_index.set(self.next_index.get() + 1);
        Some(Ticket {
            intended,
            spec: self.mix.borrow_mut().pick(),
            recorded,
        })
    }

    /// When the measured part of the run starts.
    pub fn warmup_end(&self) -> Instant {
        self.warmup_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_exact_and_spread() {
        let mut m = Mix::new(&[5, 1, 1]);
        let seq: Vec<usize> = (0..7).map(|_| m.pick()).collect();
        assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn open_loop_times_interleave_and_stop() {
        let t0 = Instant::now();
        let pace = |phase| Pace::Open {
            rate: 1000.0,
            phase,
            stride: 2,
        };
        let a = Dispenser::new(t0, Duration::ZERO, None, Some(3), pace(0), Mix::new(&[1]));
        let b = Dispenser::new(t0, Duration::ZERO, None, Some(3), pace(1), Mix::new(&[1]));
        let ta: Vec<_> = std::iter::from_fn(|| a.next(t0))
            .map(|t| t.intended - t0)
            .collect();
        let tb: Vec<_> = std::iter::from_fn(|| b.next(t0))
            .map(|t| t.intended - t0)
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(ta, vec![ms(0), ms(2), ms(4)]);
        assert_eq!(tb, vec![ms(1), ms(3), ms(5)]);
    }

    #[test]
    fn latency_origin() {
        let t0 = Instant::now();
        let t = Ticket {
            intended: t0 + Duration::from_millis(10),
            spec: 0,
            recorded: true,
        };
        let late = t0 + Duration::from_millis(30);
        let early = t0 + Duration::from_millis(9);
        assert_eq!(t.latency_origin(late, true), t.intended);
        assert_eq!(t.latency_origin(early, true), early);
        assert_eq!(t.latency_origin(late, false), t.intended);
        assert_eq!(t.due(), t.intended - TIMER_SLACK);
    }

    #[test]
    fn warmup_and_duration() {
        let t0 = Instant::now();
        let d = Dispenser::new(
            t0,
            Duration::from_millis(10),
            Some(Duration::from_millis(10)),
            None,
            Pace::Closed,
            Mix::new(&[1]),
        );
        assert!(!d.next(t0).unwrap().recorded);
        assert!(d.next(t0 + Duration::from_millis(15)).unwrap().recorded);
        assert!(d.next(t0 + Duration::from_millis(20)).is_none());
    }
}
