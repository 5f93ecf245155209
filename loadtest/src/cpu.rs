//! The generator's own CPU time (`getrusage(RUSAGE_SELF)`, user + system, all threads), so a
//! report can say how much CPU the load itself cost per 1,000 requests.

use std::time::Duration;

/// User and system CPU time of this process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// User time.
    pub user: Duration,
    /// System time.
    pub system: Duration,
}

impl CpuTime {
    /// Reads the process's CPU time; zero if the call fails (it cannot for RUSAGE_SELF).
    pub fn now() -> Self {
        // SAFETY: `rusage` is plain old data, so all-zero bytes are a valid value, and
        // getrusage only writes into the struct we pass, which lives for the whole call.
        let (rc, ru) = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            let rc = libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            (rc, ru)
        };
        if rc != 0 {
            return Self::default();
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
        };
        Self {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
        }
    }

    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `earlier`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_work() {
        let a = CpuTime::now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = CpuTime::now().since(&a).total();
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }
}
