//! ringgate-load: a load generator that speaks FastCGI and SCGI natively.
//!
//! Modules, one job each:
//! - [`cli`]: the options; [`config`]: checking them into an [`config::Invocation`];
//!   [`error`]: what is wrong with them.
//! - [`target`]: target URLs and sockets; [`request`]: specs, nginx-like CGI variables and
//!   their pre-encoded wire bytes; [`scenario`]: built-in scenarios and scenario files;
//!   [`verify`]: expected bodies of the demo application.
//! - [`schedule`]: closed/open-loop tickets and the weighted mix; [`worker`]: one
//!   current-thread runtime per generator thread, [`thread`] the state its tasks share;
//!   [`fastcgi_client`], [`scgi_client`]:
//!   the connections; [`response`]: reading a CGI response.
//! - [`stats`]: outcomes and histograms; [`runner`]: one measured run; [`compare`]: A/B
//!   rounds; [`report`], [`plot`]: text, JSON and SVG output; [`cpu`]: the generator's CPU.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod compare;
pub mod config;
pub mod cpu;
pub mod error;
pub mod fastcgi_client;
pub mod plot;
pub mod report;
pub mod request;
pub mod response;
pub mod runner;
pub mod scenario;
pub mod scgi_client;
pub mod schedule;
pub mod stats;
pub mod target;
pub mod thread;
pub mod verify;
pub mod worker;

use std::sync::Arc;

use config::Invocation;
use plot::Series;
use report::Summary;

/// Runs an invocation, prints its report (text or JSON) on stdout and writes the plot.
/// Returns the number of failed requests.
pub fn execute(inv: &Invocation) -> Result<u64, Box<dyn std::error::Error>> {
    let plan = Arc::new(inv.plan.clone());
    let title = |t: &str| {
        format!(
            "{t}: {} {} loop, {} conn x {}",
            plan.scenario.name,
            plan.mode(),
            plan.connections,
            plan.depth
        )
    };
    match &inv.compare {
        None => {
            let r = runner::run_once(&plan, &inv.target, inv.progress)?;
            let s = Summary::new(&plan, &r);
            if inv.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", s.to_text());
            }
            if let Some(path) = &inv.plot {
                let series = [Series {
                    label: inv.target.url.clone(),
                    histogram: &r.stats.latency,
                }];
                plot::write(path, &title(&inv.target.url), &series)?;
            }
            Ok(s.errors_total)
        }
        Some(b) => {
            let (cmp, runs) = compare::run(&plan, &inv.target, b, inv.rounds, inv.progress)?;
            if inv.json {
                println!("{}", serde_json::to_string_pretty(&cmp)?);
            } else {
                print!("{}", cmp.to_text());
            }
            if let Some(path) = &inv.plot {
                let mut ha = stats::Stats::new();
                let mut hb = stats::Stats::new();
                for (ra, rb) in &runs {
                    ha.merge(&ra.stats);
                    hb.merge(&rb.stats);
                }
                let series = [
                    Series {
                        label: format!("A {} ({} rounds)", cmp.a, inv.rounds),
                        histogram: &ha.latency,
                    },
                    Series {
                        label: format!("B {} ({} rounds)", cmp.b, inv.rounds),
                        histogram: &hb.latency,
                    },
                ];
                plot::write(path, &title("A/B"), &series)?;
            }
            Ok(cmp
                .pairs
                .iter()
                .map(|p| p.a.errors_total + p.b.errors_total)
                .sum())
        }
    }
}
