//! The state one generator thread's connection tasks share ([`Worker`]): its own module so
//! that the clients ([`crate::fastcgi_client`], [`crate::scgi_client`]) and the thread that
//! starts them ([`crate::worker`]) do not import each other.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::Plan;
use crate::request::FcgiRequest;
use crate::schedule::Dispenser;
use crate::stats::{Progress, Stats};
use crate::target::Target;

/// Per-thread state shared by the thread's connection tasks.
#[derive(Debug)]
pub struct Worker {
    /// Where to connect.
    pub target: Target,
    /// The plan (specs, options).
    pub plan: Arc<Plan>,
    /// FastCGI requests encoded with id 1, one per spec (empty for SCGI).
    pub fcgi: Vec<FcgiRequest>,
    /// SCGI requests, one per spec (empty for FastCGI).
    pub scgi: Vec<Bytes>,
    /// Tickets for this thread.
    pub dispenser: Dispenser,
    /// This thread's counters.
    pub stats: RefCell<Stats>,
    /// Live counters for the progress line.
    pub progress: Arc<Progress>,
}

impl Worker {
    /// Whether latency runs from the intended send time (open loop).
    pub fn open_loop(&self) -> bool {
        self.plan.rate.is_some()
    }

    /// Whether `now` is past the warmup (bytes are counted from then on).
    pub fn measuring(&self, now: Instant) -> bool {
        now >= self.dispenser.warmup_end()
    }
}
