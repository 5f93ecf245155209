//! Generator threads: each runs its own current-thread tokio runtime with its share of the
//! connections, its own [`Dispenser`], its own pre-encoded requests and its own [`Stats`]
//! (no lock, no shared counter on the hot path). The stats are merged by the caller.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Plan;
use crate::request::{encode_scgi, FcgiRequest, ParamsContext};
use crate::schedule::{Dispenser, Mix, Pace};
use crate::stats::{Progress, Stats};
use crate::target::{Protocol, Target};
pub use crate::thread::Worker;
use crate::{fastcgi_client, scgi_client};

/// How the connections and the request budget split over threads: thread `i` of `n` gets
/// `total / n`, plus one if `i < total % n`.
pub fn share(total: u64, i: usize, n: usize) -> u64 {
    let (i, n) = (i as u64, n as u64);
    total / n + u64::from(i < total % n)
}

/// Runs thread `index` of the plan against `target` from `start`; returns its counters and
/// when its last request ended.
pub fn run_thread(
    plan: Arc<Plan>,
    target: Target,
    index: usize,
    start: Instant,
    progress: Arc<Progress>,
) -> std::io::Result<(Stats, Instant)> {
    let n = plan.threads;
    let connections = share(plan.connections as u64, index, n) as usize;
    let pace = match plan.rate {
        Some(rate) => Pace::Open {
            rate,
            phase: index as u64,
            stride: n as u64,
        },
        None => Pace::Closed,
    };
    let weights: Vec<u32> = plan.scenario.specs.iter().map(|s| s.weight).collect();
    let dispenser = Dispenser::new(
        start,
        plan.warmup,
        plan.duration,
        plan.requests.map(|r| share(r, index, n)),
        pace,
        Mix::new(&weights),
    );
    let (server_addr, server_port) = target.server_addr_port();
    let ctx = ParamsContext {
        document_root: plan.document_root.clone(),
        server_name: plan.server_name.clone(),
        server_addr,
        server_port,
    };
    let (fcgi, scgi) = match target.protocol {
        Protocol::FastCgi => (
            plan.scenario
                .specs
                .iter()
                .map(|s| FcgiRequest::encode(s, &ctx, plan.keep_conn))
                .collect(),
            Vec::new(),
        ),
        Protocol::Scgi => (
            Vec::new(),
            plan.scenario
                .specs
                .iter()
                .map(|s| encode_scgi(s, &ctx))
                .collect(),
        ),
    };
    let protocol = target.protocol;
    let worker = Rc::new(Worker {
        target,
        plan,
        fcgi,
        scgi,
        dispenser,
        stats: RefCell::new(Stats::new()),
        progress,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let w = worker.clone();
    local.block_on(&rt, async move {
        tokio::time::sleep_until(start.into()).await;
        let tasks: Vec<_> = (0..connections)
            .map(|_| match protocol {
                Protocol::FastCgi => tokio::task::spawn_local(fastcgi_client::run(w.clone())),
                Protocol::Scgi => tokio::task::spawn_local(scgi_client::run(w.clone())),
            })
            .collect();
        drop(w);
        for t in tasks {
            if let Err(e) = t.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    });
    let finished = Instant::now();
    drop(local);
    let stats = worker.stats.replace(Stats::new());
    Ok((stats, finished))
}

/// A small delay before the first request so every thread is up when the clock starts.
pub const START_DELAY: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        for total in [0u64, 1, 7, 16, 1001] {
            for n in 1..6 {
                let sum: u64 = (0..n).map(|i| share(total, i, n)).sum();
                assert_eq!(sum, total);
            }
        }
    }
}
