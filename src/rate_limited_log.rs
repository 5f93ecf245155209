//! Log lines about a cause that can repeat thousands of times a second (an `accept` failing
//! for lack of descriptors, a client cap being hit): written at most once per [`LOG_INTERVAL`],
//! with the number of lines held back in between.

use std::time::{Duration, Instant};

/// At most one log line per cause per this interval; the rest are counted in the next line.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One cause's log line, rate-limited.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// Whether to log now; `Some(n)` with the number of lines suppressed since the last one.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_holds_back() {
        let mut log = RateLimitedLog::default();
        let t0 = Instant::now();
        assert_eq!(log.allow(t0), Some(0));
        assert_eq!(log.allow(t0 + Duration::from_millis(1)), None);
        assert_eq!(log.allow(t0 + LOG_INTERVAL / 2), None);
        assert_eq!(log.allow(t0 + LOG_INTERVAL), Some(2));
        assert_eq!(log.allow(t0 + LOG_INTERVAL), None);
    }
}
