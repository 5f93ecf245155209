//! Turning [`Args`] into a checked [`Invocation`]: targets, the load [`Plan`] and output
//! options. Every combination that cannot work is refused here with a clear message.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, ScenarioName};
pub use crate::error::ConfigError;
use crate::request::Behaviour;
use crate::scenario::{self, Scenario};
use crate::target::{Protocol, Target};

/// Measured run time when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// How much load, of which shape, with which requests.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The requests and the scenario name.
    pub scenario: Scenario,
    /// Connections over all threads.
    pub connections: usize,
    /// Requests in flight per connection.
    pub depth: u16,
    /// `FCGI_KEEP_CONN`.
    pub keep_conn: bool,
    /// Generator threads (at most one per connection).
    pub threads: usize,
    /// Open-loop rate over all threads, if any.
    pub rate: Option<f64>,
    /// Measured time.
    pub duration: Option<Duration>,
    /// Measured requests.
    pub requests: Option<u64>,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Per-request limit.
    pub timeout: Duration,
    /// Response head limit.
    pub max_head_bytes: usize,
    /// `DOCUMENT_ROOT`.
    pub document_root: String,
    /// `SERVER_NAME`.
    pub server_name: String,
}

impl Plan {
    /// `closed` or `open`.
    pub fn mode(&self) -> &'static str {
        if self.rate.is_some() {
            "open"
        } else {
            "closed"
        }
    }
}

/// Everything one invocation does.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The load.
    pub plan: Plan,
    /// The target (A of a comparison).
    pub target: Target,
    /// B of a comparison.
    pub compare: Option<Target>,
    /// Comparison rounds.
    pub rounds: u32,
    /// JSON on stdout.
    pub json: bool,
    /// SVG plot path.
    pub plot: Option<PathBuf>,
    /// Show the live progress line (when stderr is a terminal).
    pub progress: bool,
    /// Exit 1 when a request failed.
    pub fail_on_error: bool,
}

impl Invocation {
    /// Checks `args` and builds the invocation.
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        let (a, b) = match (&args.target, args.compare.as_slice()) {
            (Some(a), []) => (a.clone(), None),
            (Some(a), [b]) => (a.clone(), Some(b.clone())),
            (None, [a, b]) => (a.clone(), Some(b.clone())),
            (Some(_), _) => return bad("give --target A --compare B, or --compare A B"),
            (None, _) => return bad("--target URL is required (or --compare A B)"),
        };
        let parse = |u: &str| u.parse::<Target>().map_err(|e| ConfigError(e.to_string()));
        let target = parse(&a)?;
        let compare = b.as_deref().map(parse).transpose()?;
        if args.connections == 0 {
            return bad("--connections must be at least 1");
        }
        if args.depth == 0 {
            return bad("--depth must be at least 1");
        }
        if args.threads == 0 {
            return bad("--threads must be at least 1");
        }
        if args.depth > 1 && !args.keep_conn {
            return bad("--depth above 1 multiplexes requests on one connection: add --keep-conn");
        }
        if let Some(r) = args.rate {
            if !(r.is_finite() && r > 0.0) {
                return bad("--rate must be a positive number of requests per second");
            }
        }
        if args.rounds == 0 {
            return bad("--rounds must be at least 1");
        }
        if args.duration.is_some_and(|d| d.is_zero()) || args.requests == Some(0) {
            return bad("--duration and --requests must be above zero");
        }
        if args.timeout.is_zero() {
            return bad("--timeout must be above zero");
        }
        let mut scenario = scenario::from_args(args)?;
        let any_scgi = std::iter::once(&target)
            .chain(compare.as_ref())
            .any(|t| t.protocol == Protocol::Scgi);
        if any_scgi && args.scenario == Some(ScenarioName::Mixed) {
            // SCGI has no ABORT_REQUEST: the built-in mix leaves that part out.
            scenario
                .specs
                .retain(|s| !matches!(s.behaviour, Behaviour::Abort { .. }));
        }
        for t in std::iter::once(&target).chain(compare.as_ref()) {
            if t.protocol == Protocol::Scgi {
                if args.keep_conn {
                    return bad("SCGI closes the connection after each response: drop --keep-conn");
                }
                let aborts = scenario
                    .specs
                    .iter()
                    .any(|s| matches!(s.behaviour, Behaviour::Abort { .. }) && s.weight > 0);
                if aborts {
                    return bad("SCGI has no ABORT_REQUEST: the abort scenario is FastCGI only");
                }
            }
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        Ok(Self {
            plan: Plan {
                scenario,
                connections: args.connections,
                depth: args.depth,
                keep_conn: args.keep_conn,
                threads: args.threads.min(args.connections),
                rate: args.rate,
                duration,
                requests: args.requests,
                warmup: args.warmup,
                timeout: args.timeout,
                max_head_bytes: args.max_head_bytes,
                document_root: args.document_root.clone(),
                server_name: args.server_name.clone(),
            },
            target,
            compare,
            rounds: args.rounds,
            json: args.json,
            plot: args.plot.clone(),
            progress: !args.quiet && !args.json,
            fail_on_error: args.fail_on_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn inv(a: &[&str]) -> Result<Invocation, ConfigError> {
        let mut v = vec!["ringgate-load"];
        v.extend_from_slice(a);
        Invocation::from_args(&Args::try_parse_from(v).unwrap())
    }

    #[test]
    fn compare_forms() {
        let i = inv(&["--compare", "fastcgi://127.0.0.1:1", "scgi://127.0.0.1:2"]).unwrap();
        assert_eq!(i.target.url, "fastcgi://127.0.0.1:1");
        assert_eq!(i.compare.unwrap().url, "scgi://127.0.0.1:2");
        let i = inv(&[
            "-t",
            "fastcgi://127.0.0.1:1",
            "--compare",
            "fastcgi://127.0.0.1:2",
        ])
        .unwrap();
        assert!(i.compare.is_some());
        assert!(inv(&["--compare", "fastcgi://127.0.0.1:1"]).is_err());
    }

    #[test]
    fn refuses_nonsense() {
        let t = ["-t", "fastcgi://127.0.0.1:1"];
        let with = |extra: &[&str]| inv(&[&t[..], extra].concat());
        assert!(with(&["--depth", "4"]).is_err());
        assert!(with(&["--depth", "4", "--keep-conn"]).is_ok());
        assert!(with(&["--rate", "0"]).is_err());
        assert!(with(&["--connections", "0"]).is_err());
        assert!(inv(&["-t", "scgi://127.0.0.1:1", "--keep-conn"]).is_err());
        assert!(inv(&["-t", "scgi://127.0.0.1:1", "--scenario", "abort"]).is_err());
        let mixed = inv(&["-t", "scgi://127.0.0.1:1", "--scenario", "mixed"]).unwrap();
        assert!(mixed.plan.scenario.specs.iter().all(|s| s.name != "abort"));
        let i = with(&["--threads", "8", "--connections", "2"]).unwrap();
        assert_eq!(i.plan.threads, 2);
        assert_eq!(i.plan.duration, Some(DEFAULT_DURATION));
        assert_eq!(with(&["-n", "5"]).unwrap().plan.duration, None);
    }
}
