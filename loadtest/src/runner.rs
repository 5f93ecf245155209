//! One measured run: starts the generator threads on a common clock, shows the live progress
//! line once a second (only on a terminal), joins the threads, merges their histograms and
//! counters, and measures the run's wall time and the generator's own CPU time.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Plan;
use crate::cpu::CpuTime;
use crate::stats::{Progress, Stats};
use crate::target::Target;
use crate::worker::{run_thread, START_DELAY};

/// Interval of the live progress line.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What one run measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The target loaded.
    pub target: Target,
    /// Merged counters of all threads.
    pub stats: Stats,
    /// From the end of the warmup until the last thread finished.
    pub elapsed: Duration,
    /// The generator's CPU time over the whole run (warmup included).
    pub cpu: CpuTime,
}

impl RunResult {
    /// Complete responses per second of the measured time.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// 99th percentile latency in nanoseconds (0 without completed requests).
    pub fn p99_ns(&self) -> u64 {
        self.stats.latency.value_at_quantile(0.99)
    }

    /// Generator CPU time per 1,000 requests (every request that ended, warmup included).
    pub fn cpu_per_1000(&self) -> Option<Duration> {
        let n = self.stats.total_requests() + self.stats.warmup;
        (n > 0).then(|| self.cpu.total().mul_f64(1000.0 / n as f64))
    }
}

/// Runs `plan` against `target`; `progress` shows the live line when stderr is a terminal.
pub fn run_once(plan: &Arc<Plan>, target: &Target, progress: bool) -> std::io::Result<RunResult> {
    let cpu0 = CpuTime::now();
    let start = Instant::now() + START_DELAY;
    let counters: Vec<Arc<Progress>> = (0..plan.threads).map(|_| Arc::default()).collect();
    let handles = counters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (plan, target, c) = (plan.clone(), target.clone(), c.clone());
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || run_thread(plan, target, i, start, c))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let live = progress && std::io::stderr().is_terminal();
    let warmup_end = start + plan.warmup;
    let mut next_line = start + PROGRESS_INTERVAL;
    let mut last_total = 0u64;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if live && Instant::now() >= next_line {
            next_line += PROGRESS_INTERVAL;
            let sum = |f: fn(&Progress) -> u64| counters.iter().map(|c| f(c)).sum::<u64>();
            let ok = sum(|p| p.ok.load(Ordering::Relaxed));
            let errors = sum(|p| p.errors.load(Ordering::Relaxed));
            let warmup = sum(|p| p.warmup.load(Ordering::Relaxed));
            let total = ok + errors + warmup;
            let t = Instant::now().saturating_duration_since(start).as_secs();
            let line = if warmup > 0 && ok + errors == 0 {
                format!(
                    "[{t:>3}s] warmup: {warmup} requests, {} req/s",
                    total - last_total
                )
            } else {
                format!(
                    "[{t:>3}s] {ok} ok, {errors} errors, {} req/s",
                    total - last_total
                )
            };
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            last_total = total;
        }
    }
    if live {
        eprint!("\r\x1b[K");
    }
    let mut stats = Stats::new();
    let mut end = start;
    for h in handles {
        match h.join() {
            Ok(Ok((s, finished))) => {
                stats.merge(&s);
                end = end.max(finished);
            }
            Ok(Err(e)) => return Err(e),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(RunResult {
        target: target.clone(),
        stats,
        elapsed: end.saturating_duration_since(warmup_end),
        cpu: CpuTime::now().since(&cpu0),
    })
}
