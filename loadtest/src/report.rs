//! Results as people and programs read them: the [`Summary`] of a run (serialized for
//! `--json`) and its text form.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::Plan;
use crate::runner::RunResult;
use crate::stats::{ErrorKind, ScenarioCounts};
use crate::target::Protocol;

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// 99.99th percentile.
    pub p99_99: f64,
    /// Highest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The generator's CPU use.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cpu {
    /// User seconds.
    pub user_s: f64,
    /// System seconds.
    pub system_s: f64,
    /// User + system milliseconds per 1,000 requests (warmup included).
    pub per_1000_requests_ms: Option<f64>,
}

/// Everything a run measured, as `--json` prints it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// Target URL.
    pub target: String,
    /// Target protocol.
    pub protocol: Protocol,
    /// Scenario name.
    pub scenario: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Open-loop rate.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub depth: u16,
    /// `FCGI_KEEP_CONN`.
    pub keep_conn: bool,
    /// Generator threads.
    pub threads: usize,
    /// Measured seconds.
    pub elapsed_s: f64,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// Requests that ended after the warmup, whatever the outcome.
    pub requests: u64,
    /// Complete responses.
    pub ok: u64,
    /// Complete responses per second.
    pub throughput_rps: f64,
    /// Latency of complete responses.
    pub latency_ms: Latency,
    /// Complete responses by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Failures by kind (only kinds that occurred).
    pub errors: BTreeMap<&'static str, u64>,
    /// Failures by class (connect, io, protocol, timeout, refused, verify).
    pub errors_by_class: BTreeMap<&'static str, u64>,
    /// All failures.
    pub errors_total: u64,
    /// Scenario behaviour counters.
    pub scenario_counts: ScenarioCounts,
    /// Requests that ended during the warmup.
    pub warmup_requests: u64,
    /// Bytes read after the warmup.
    pub bytes_in: u64,
    /// Bytes written after the warmup.
    pub bytes_out: u64,
    /// Response body bytes of complete responses.
    pub body_bytes: u64,
    /// FastCGI STDERR bytes.
    pub stderr_bytes: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Generator CPU.
    pub cpu: Cpu,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Summary {
    /// Builds the summary of `r`, a run of `plan`.
    pub fn new(plan: &Plan, r: &RunResult) -> Self {
        let s = &r.stats;
        let h = &s.latency;
        let q = |p: f64| ms(h.value_at_quantile(p));
        let mut errors = BTreeMap::new();
        let mut errors_by_class = BTreeMap::new();
        for k in ErrorKind::ALL {
            let n = s.error_count(k);
            if n > 0 {
                errors.insert(k.name(), n);
                *errors_by_class.entry(k.class()).or_insert(0) += n;
            }
        }
        Self {
            target: r.target.url.clone(),
            protocol: r.target.protocol,
            scenario: plan.scenario.name.clone(),
            mode: plan.mode(),
            rate: plan.rate,
            connections: plan.connections,
            depth: plan.depth,
            keep_conn: plan.keep_conn,
            threads: plan.threads,
            elapsed_s: r.elapsed.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            requests: s.total_requests(),
            ok: s.ok,
            throughput_rps: r.throughput(),
            latency_ms: Latency {
                p50: q(0.50),
                p75: q(0.75),
                p90: q(0.90),
                p99: q(0.99),
                p99_9: q(0.999),
                p99_99: q(0.9999),
                max: ms(h.max()),
                mean: h.mean() / 1e6,
            },
            statuses: s.status_counts().into_iter().collect(),
            errors,
            errors_by_class,
            errors_total: s.total_errors(),
            scenario_counts: s.scenario.clone(),
            warmup_requests: s.warmup,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            body_bytes: s.body_bytes,
            stderr_bytes: s.stderr_bytes,
            connections_opened: s.connections,
            cpu: Cpu {
                user_s: r.cpu.user.as_secs_f64(),
                system_s: r.cpu.system.as_secs_f64(),
                per_1000_requests_ms: r.cpu_per_1000().map(|d| d.as_secs_f64() * 1e3),
            },
        }
    }

    /// The text report.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "target    {} ({:?})", self.target, self.protocol);
        let shape = match self.rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            o,
            "load      {shape}, {} connection{} x depth {}, {}, {} thread{}, scenario {}",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.depth,
            if self.keep_conn {
                "keep-conn"
            } else {
                "one connection per request"
            },
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.scenario
        );
        let warm = if self.warmup_s > 0.0 {
            format!(
                " after {:.2} s warmup ({} requests)",
                self.warmup_s, self.warmup_requests
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "measured  {:.2} s{warm}: {} requests, {} ok, {:.1} req/s",
            self.elapsed_s, self.requests, self.ok, self.throughput_rps
        );
        let l = &self.latency_ms;
        if self.ok == 0 {
            let _ = writeln!(o, "latency   none (no complete response)");
        } else {
            let _ = writeln!(
                o,
                "latency   p50 {}  p75 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  (mean {})",
                fmt_ms(l.p50),
                fmt_ms(l.p75),
                fmt_ms(l.p90),
                fmt_ms(l.p99),
                fmt_ms(l.p99_9),
                fmt_ms(l.p99_99),
                fmt_ms(l.max),
                fmt_ms(l.mean)
            );
        }
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} x {n}"))
            .collect();
        let _ = writeln!(o, "status    {}", list_or_none(&statuses));
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(o, "errors    {}", list_or_none(&errors));
        let c = &self.scenario_counts;
        if c != &ScenarioCounts::default() {
            let _ = writeln!(
                o,
                "scenario  aborts sent {} (ended by END_REQUEST {}, by close {}), disconnects {}, \
                 half-closes {}, reader pauses {}, cancelled {}",
                c.aborts_sent,
                c.aborts_ended,
                c.aborts_closed,
                c.disconnects,
                c.half_closes,
                c.reader_pauses,
                c.cancelled
            );
        }
        let _ = writeln!(
            o,
            "bytes     out {}, in {} (response bodies {}, stderr {}), connections opened: {}",
            fmt_bytes(self.bytes_out),
            fmt_bytes(self.bytes_in),
            fmt_bytes(self.body_bytes),
            fmt_bytes(self.stderr_bytes),
            self.connections_opened
        );
        let per = match self.cpu.per_1000_requests_ms {
            Some(ms) => format!("{ms:.2} ms CPU per 1,000 requests"),
            None => "no requests".to_owned(),
        };
        let _ = writeln!(
            o,
            "cpu       {:.2} s user + {:.2} s sys, {per}",
            self.cpu.user_s, self.cpu.system_s
        );
        o
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Milliseconds in a readable unit (us, ms or s).
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{:.0}us", ms * 1000.0)
    }
}

/// Bytes in binary units.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_ms(0.0421), "42us");
        assert_eq!(fmt_ms(12.345), "12.35ms");
        assert_eq!(fmt_ms(1500.0), "1.50s");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
