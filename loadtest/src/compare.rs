//! `--compare`: A/B/A/B interleaved rounds of the same plan against two targets, so drift
//! (thermal, other load on the machine) hits both sides alike; per-pair throughput and p99
//! ratios (B / A) and their medians.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Plan;
use crate::report::{fmt_ms, Summary};
use crate::runner::{run_once, RunResult};
use crate::target::Target;

/// One A-then-B pair.
#[derive(Clone, Debug, Serialize)]
pub struct Pair {
    /// 1-based round number.
    pub round: u32,
    /// A's run.
    pub a: Summary,
    /// B's run.
    pub b: Summary,
    /// B's throughput divided by A's.
    pub throughput_ratio: f64,
    /// B's p99 divided by A's.
    pub p99_ratio: f64,
}

/// The whole comparison, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Target A.
    pub a: String,
    /// Target B.
    pub b: String,
    /// Every round.
    pub pairs: Vec<Pair>,
    /// Median of the throughput ratios.
    pub median_throughput_ratio: f64,
    /// Median of the p99 ratios.
    pub median_p99_ratio: f64,
}

/// Runs `rounds` A/B pairs; returns the comparison and every run (for plots).
pub fn run(
    plan: &Arc<Plan>,
    a: &Target,
    b: &Target,
    rounds: u32,
    progress: bool,
) -> std::io::Result<(Comparison, Vec<(RunResult, RunResult)>)> {
    let mut pairs = Vec::new();
    let mut runs = Vec::new();
    for round in 1..=rounds {
        let ra = run_once(plan, a, progress)?;
        let rb = run_once(plan, b, progress)?;
        pairs.push(Pair {
            round,
            a: Summary::new(plan, &ra),
            b: Summary::new(plan, &rb),
            throughput_ratio: ratio(rb.throughput(), ra.throughput()),
            p99_ratio: ratio(rb.p99_ns() as f64, ra.p99_ns() as f64),
        });
        runs.push((ra, rb));
    }
    let cmp = Comparison {
        a: a.url.clone(),
        b: b.url.clone(),
        median_throughput_ratio: median(pairs.iter().map(|p| p.throughput_ratio).collect()),
        median_p99_ratio: median(pairs.iter().map(|p| p.p99_ratio).collect()),
        pairs,
    };
    Ok((cmp, runs))
}

fn ratio(b: f64, a: f64) -> f64 {
    if a > 0.0 {
        b / a
    } else {
        f64::NAN
    }
}

/// Median of the finite values (NaN if none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl Comparison {
    /// The text table.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "A = {}\nB = {}", self.a, self.b);
        let _ = writeln!(
            o,
            "{:>5}  {:>12} {:>12} {:>7}  {:>10} {:>10} {:>7}  {:>6} {:>6}",
            "round", "A req/s", "B req/s", "B/A", "A p99", "B p99", "B/A", "A err", "B err"
        );
        for p in &self.pairs {
            let _ = writeln!(
                o,
                "{:>5}  {:>12.1} {:>12.1} {:>7.3}  {:>10} {:>10} {:>7.3}  {:>6} {:>6}",
                p.round,
                p.a.throughput_rps,
                p.b.throughput_rps,
                p.throughput_ratio,
                fmt_ms(p.a.latency_ms.p99),
                fmt_ms(p.b.latency_ms.p99),
                p.p99_ratio,
                p.a.errors_total,
                p.b.errors_total
            );
        }
        let _ = writeln!(
            o,
            "median B/A: throughput {:.3}, p99 {:.3}",
            self.median_throughput_ratio, self.median_p99_ratio
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![f64::NAN]).is_nan());
    }
}
