//! Command line of `ringgate-load`: every option, parsed with clap. Checking that the options
//! make sense together is `config.rs`'s job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::response::DEFAULT_MAX_HEAD_BYTES;

/// Built-in scenarios (`--scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// Stop reading for `--pause` once the response starts, so the server's send queue fills.
    SlowReader,
    /// Send ABORT_REQUEST `--abort-after` the request; count the END_REQUESTs that follow.
    Abort,
    /// shutdown(SHUT_WR) after sending the request, then read the whole response.
    HalfClose,
    /// Close the connection as soon as the response starts.
    Disconnect,
    /// GET /stream?chunks=N&size=S and check the body length (and bytes with --verify).
    LargeResponse,
    /// A weighted mix of plain requests and all the scenarios above.
    Mixed,
}

/// A load generator that speaks FastCGI and SCGI natively.
#[derive(Parser, Debug, Clone)]
#[command(name = "ringgate-load", version, about, max_term_width = 100)]
pub struct Args {
    /// Server to load: fastcgi://HOST:PORT, fastcgi://unix:/PATH, scgi://HOST:PORT or
    /// scgi://unix:/PATH.
    #[arg(short, long, value_name = "URL")]
    pub target: Option<String>,
    /// A/B comparison: `--compare B` (A is --target) or `--compare A B`. Runs A/B/A/B
    /// interleaved rounds and prints per-pair throughput and p99 ratios.
    #[arg(long, value_name = "URL", num_args = 1..=2)]
    pub compare: Vec<String>,
    /// Rounds (A then B each) of an A/B comparison.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,

    /// Connections (closed loop: each keeps --depth requests in flight).
    #[arg(short, long, default_value_t = 16)]
    pub connections: usize,
    /// Requests in flight per connection, multiplexed with request ids 1..=DEPTH (FastCGI
    /// with --keep-conn only).
    #[arg(short, long, default_value_t = 1)]
    pub depth: u16,
    /// Keep FastCGI connections open (FCGI_KEEP_CONN), like nginx's fastcgi_keep_conn.
    /// Without it every request has its own connection (flags 0), like lighttpd.
    #[arg(short, long)]
    pub keep_conn: bool,
    /// Open loop: send this many requests per second (over all threads), measuring latency
    /// from each request's intended send time (coordinated omission corrected).
    #[arg(short, long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Measured run time (after the warmup). Default 10s unless --requests is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Measured requests in total (after the warmup).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Time to run before measuring; requests that end in it are not counted.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Generator threads, each with its own single-threaded runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Per-request limit (connect, and send to END_REQUEST or end of response).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub timeout: Duration,

    /// Request method (default GET, or POST with a body).
    #[arg(short = 'X', long)]
    pub method: Option<String>,
    /// Request URI with its query string (default depends on the scenario; /hello).
    #[arg(short, long)]
    pub uri: Option<String>,
    /// Request header `Name: value` (repeatable), sent as HTTP_NAME.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body from a file.
    #[arg(long, value_name = "PATH", conflicts_with = "body_size")]
    pub body_file: Option<PathBuf>,
    /// Request body of N bytes (a repeating a-z pattern).
    #[arg(long, value_name = "N")]
    pub body_size: Option<usize>,
    /// DOCUMENT_ROOT (SCRIPT_FILENAME is this plus the URI's path).
    #[arg(long, default_value = "/var/www/html")]
    pub document_root: String,
    /// SERVER_NAME and the default Host header.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,

    /// Built-in scenario.
    #[arg(short, long, value_enum, conflicts_with = "scenario_file")]
    pub scenario: Option<ScenarioName>,
    /// Scenario file (TOML, or JSON when the name ends in .json) of weighted requests.
    #[arg(long, value_name = "PATH")]
    pub scenario_file: Option<PathBuf>,
    /// slow-reader: how long reading stops.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200ms")]
    pub pause: Duration,
    /// abort: delay from sending the request to ABORT_REQUEST.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    pub abort_after: Duration,
    /// large-response: number of chunks.
    #[arg(long, default_value_t = 256)]
    pub chunks: u64,
    /// large-response: bytes per chunk.
    #[arg(long, default_value_t = 4096)]
    pub chunk_size: u64,
    /// Check the bytes of /stream and /echo responses (the demo application's contract).
    #[arg(long)]
    pub verify: bool,
    /// Limit on a response head (Status and headers).
    #[arg(long, default_value_t = DEFAULT_MAX_HEAD_BYTES)]
    pub max_head_bytes: usize,

    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write a latency-by-percentile plot (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Exit with status 1 if any request failed.
    #[arg(long)]
    pub fail_on_error: bool,
    /// No live progress line (it is only shown when stderr is a terminal anyway).
    #[arg(short, long)]
    pub quiet: bool,
}
