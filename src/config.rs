//! Configuration: command-line options ([`Cli`], clap) and a TOML file ([`FileConfig`],
//! serde), merged into one validated [`Config`]. Every command-line option has a file key;
//! the command line wins over the file, the file over the defaults.
//!
//! File layout (`deploy/ringgate.example.toml` shows every key):
//! ```toml
//! workers = 4            # default: the CPUs this process may use
//! io = "auto"            # auto | uring | epoll
//! pin = true
//! metrics = "127.0.0.1:9500"   # or "off"
//! [listeners]
//! fastcgi = ["127.0.0.1:9000", "unix:/run/ringgate/fastcgi.sock"]
//! scgi = ["127.0.0.1:9001"]
//! socket_mode = "0660"   # Unix socket files
//! socket_owner = "ringgate"
//! socket_group = "www-data"
//! backlog = 1024
//! [limits]
//! max_params_bytes = "64KiB"   # sizes: a number of bytes, or "64KiB", "1MiB"
//! [timeouts]
//! params = "10s"         # humantime: "500ms", "30s", "2m"
//! [buffers]
//! count = 0              # registered buffers per worker (off by default)
//! size = "64KiB"
//! ```
//!
//! Parsing does no I/O beyond reading the file: user and group names are resolved, and
//! sockets bound, by `main`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::channel::{Limits as EngineLimits, Protocol, Timeouts as EngineTimeouts};
use crate::rt::backend::IoMode;
use crate::rt::bufpool::{self, BufPoolConfig};
use crate::rt::listener::{ListenAddr, ListenerSpec, DEFAULT_BACKLOG};

/// FastCGI listener used when no listener is configured.
pub const DEFAULT_FASTCGI_ADDR: &str = "127.0.0.1:9000";
/// SCGI listener used when no listener is configured.
pub const DEFAULT_SCGI_ADDR: &str = "127.0.0.1:9001";
/// Where `/metrics` is served by default: loopback only, on a port outside the common
/// FastCGI/SCGI ones.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9500";
/// Most worker threads accepted.
pub const MAX_WORKERS: usize = 4096;

/// Default cap on the bytes of one request's FastCGI params (names and values).
pub const DEFAULT_MAX_PARAMS_BYTES: usize = EngineLimits::DEFAULT_MAX_PARAMS_BYTES;
/// Default cap on the number of FastCGI params of one request.
pub const DEFAULT_MAX_PARAMS_PAIRS: usize = EngineLimits::DEFAULT_MAX_PARAMS_PAIRS;
/// Default cap on an SCGI header netstring.
pub const DEFAULT_MAX_SCGI_HEADER_BYTES: usize = EngineLimits::DEFAULT_MAX_SCGI_HEADER_BYTES;
/// Default cap on the response headers a handler may set.
pub const DEFAULT_MAX_HEADERS: usize = EngineLimits::DEFAULT_MAX_HEADERS;
/// Default bytes of request body buffered per request before reading stops.
pub const DEFAULT_MAX_BODY_BUFFER_BYTES: usize = EngineLimits::DEFAULT_MAX_BODY_BUFFER_BYTES;
/// Default FastCGI requests in flight per connection (advertised as FCGI_MAX_REQS).
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: usize =
    EngineLimits::DEFAULT_MAX_REQUESTS_PER_CONNECTION;
/// Default open connections per worker.
pub const DEFAULT_MAX_CONNECTIONS: usize = crate::rt::serve::DEFAULT_MAX_CONNECTIONS;
/// Default requests in flight per worker.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// Default for multiplexing FastCGI connections (FCGI_MPXS_CONNS).
pub const DEFAULT_MPXS_CONNS: bool = true;
/// Default bytes queued for sending on one connection above which response producers wait.
pub const DEFAULT_SEND_QUEUE_HIGH_WATER: usize = EngineLimits::DEFAULT_SEND_QUEUE_HIGH_WATER;
/// Largest FastCGI request id, so the most requests one connection can have in flight.
pub const MAX_FASTCGI_REQUEST_ID: usize = u16::MAX as usize;

/// Default time to receive a request's params (FastCGI) or header (SCGI).
pub const DEFAULT_PARAMS_TIMEOUT: Duration = EngineTimeouts::DEFAULT_PARAMS;
/// Default longest pause while receiving a request body.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = EngineTimeouts::DEFAULT_BODY_IDLE;
/// Default time a handler has to produce its response head.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// Default longest wait for the peer to accept more response bytes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an idle kept-alive connection stays open.
pub const DEFAULT_KEEPALIVE_IDLE_TIMEOUT: Duration = EngineTimeouts::DEFAULT_KEEPALIVE_IDLE;
/// Default quiet time before an idle connection closes while draining.
pub const DEFAULT_DRAIN_LINGER: Duration = EngineTimeouts::DEFAULT_DRAIN_LINGER;
/// Default time in-flight work gets after SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = crate::rt::serve::DEFAULT_DRAIN_TIMEOUT;

const ABOUT: &str = "Thread-per-core io_uring FastCGI/SCGI gateway";

const LONG_ABOUT: &str = "\
ringgate accepts FastCGI and SCGI connections from a web server (nginx, Apache, HAProxy, ...)
and serves the requests on one worker thread per CPU core, using io_uring where the kernel
allows it and epoll otherwise.

Examples:
  ringgate
      FastCGI on 127.0.0.1:9000 and SCGI on 127.0.0.1:9001 (the defaults)
  ringgate --fastcgi unix:/run/ringgate/fastcgi.sock --socket-mode 0660 --socket-group www-data
      FastCGI on a Unix socket the web server's group may connect to
  ringgate --config /etc/ringgate/ringgate.toml --workers 4
      settings from a file, with the worker count overridden

Every option can also be set in the TOML file given with --config: each option's help ends
with its file key (\"config: ...\"), and a command-line option wins over the file.
Under systemd socket activation, sockets named (FileDescriptorName=) \"fastcgi\" or \"scgi\"
are used as listeners as well.
Log verbosity: RUST_LOG=debug (default: info).";

/// Command-line options.
// The field docs are the `--help` text, where `[section] key` names the file key.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Parser, Debug, Default)]
#[command(name = "ringgate", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Read settings from this TOML file; command-line options override it.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve FastCGI on ADDR: IP:PORT, [IPv6]:PORT, unix:PATH or unix:@NAME. Repeatable.
    /// Giving any --fastcgi or --scgi replaces all listeners from the file.
    /// config: [listeners] fastcgi = ["ADDR", ...]
    #[arg(long, value_name = "ADDR", help_heading = "Listeners")]
    pub fastcgi: Vec<ListenAddr>,

    /// Serve SCGI on ADDR (same forms as --fastcgi). Repeatable. config: [listeners] scgi = [...]
    #[arg(long, value_name = "ADDR", help_heading = "Listeners")]
    pub scgi: Vec<ListenAddr>,

    /// File mode of Unix socket files, in octal (e.g. 0660). config: [listeners] socket_mode
    #[arg(long, value_name = "MODE", help_heading = "Listeners")]
    pub socket_mode: Option<FileMode>,

    /// Owner (user name or uid) of Unix socket files. config: [listeners] socket_owner
    #[arg(long, value_name = "USER", help_heading = "Listeners")]
    pub socket_owner: Option<String>,

    /// Group (name or gid) of Unix socket files. config: [listeners] socket_group
    #[arg(long, value_name = "GROUP", help_heading = "Listeners")]
    pub socket_group: Option<String>,

    /// listen(2) backlog per socket [default: 1024]. config: [listeners] backlog
    #[arg(long, value_name = "N", help_heading = "Listeners")]
    pub backlog: Option<u32>,

    /// Worker threads [default: the CPUs this process may use]. config: workers
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// I/O backend: auto (io_uring if the kernel allows it, else epoll), uring (fail
    /// without io_uring) or epoll [default: auto]. config: io
    #[arg(long, value_name = "MODE")]
    pub io: Option<IoMode>,

    /// Pin each worker thread to its own CPU core (the default). config: pin = true
    #[arg(long, overrides_with = "no_pin")]
    pub pin: bool,

    /// Do not pin worker threads. config: pin = false
    #[arg(long, overrides_with = "pin")]
    pub no_pin: bool,

    /// Serve Prometheus metrics at http://ADDR/metrics [default: 127.0.0.1:9500].
    /// config: metrics = "ADDR"
    #[arg(long, value_name = "ADDR", conflicts_with = "no_metrics")]
    pub metrics: Option<SocketAddr>,

    /// Do not serve metrics. config: metrics = "off"
    #[arg(long)]
    pub no_metrics: bool,

    /// Bytes of FastCGI params per request [default: 64KiB]. config: [limits] max_params_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_params_bytes: Option<ByteSize>,

    /// FastCGI params per request [default: 512]. config: [limits] max_params_pairs
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_params_pairs: Option<usize>,

    /// Bytes of an SCGI request header [default: 64KiB]. config: [limits] max_scgi_header_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_scgi_header_bytes: Option<ByteSize>,

    /// Response headers per response [default: 100]. config: [limits] max_headers
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_headers: Option<usize>,

    /// Request body bytes buffered per request before reading pauses [default: 256KiB].
    /// config: [limits] max_body_buffer_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_body_buffer_bytes: Option<ByteSize>,

    /// FastCGI requests in flight per connection, 1-65535 [default: 64].
    /// config: [limits] max_requests_per_connection
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_requests_per_connection: Option<usize>,

    /// Open connections per worker [default: 10000]. config: [limits] max_connections
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_connections: Option<usize>,

    /// Requests in flight per worker [default: 10000]. config: [limits] max_in_flight
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_in_flight: Option<usize>,

    /// Accept several FastCGI requests on one connection (FCGI_MPXS_CONNS) [default: true].
    /// config: [limits] mpxs_conns
    #[arg(long, value_name = "BOOL", help_heading = "Limits")]
    pub mpxs_conns: Option<bool>,

    /// Bytes queued for sending per connection above which responses wait [default: 256KiB].
    /// config: [limits] send_queue_high_water
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub send_queue_high_water: Option<ByteSize>,

    /// Time to receive a request's params or SCGI header [default: 10s]. config: [timeouts] params
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub params_timeout: Option<Duration>,

    /// Longest pause inside a request body [default: 30s]. config: [timeouts] body_idle
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub body_idle_timeout: Option<Duration>,

    /// Time a handler has to start its response [default: 60s]. config: [timeouts] handler
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub handler_timeout: Option<Duration>,

    /// Longest wait for the peer to take more response bytes [default: 30s].
    /// config: [timeouts] write
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub write_timeout: Option<Duration>,

    /// Idle time before a kept-alive connection is closed [default: 60s].
    /// config: [timeouts] keepalive_idle
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub keepalive_idle_timeout: Option<Duration>,

    /// Time in-flight requests get after SIGTERM/SIGINT [default: 30s]. config: [timeouts] drain
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,

    /// While draining, how long an idle connection must stay quiet before it closes, so a
    /// request already on its way is answered (refused) rather than lost [default: 250ms].
    /// config: [timeouts] drain_linger
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub drain_linger: Option<Duration>,

    /// Registered (io_uring fixed) buffers per worker; 0 disables them [default: 0, since
    /// they measured no faster on sockets]. config: [buffers] count
    #[arg(long, value_name = "N", help_heading = "Buffers")]
    pub buffers_count: Option<usize>,

    /// Size of each registered buffer [default: 64KiB]. config: [buffers] size
    #[arg(long, value_name = "SIZE", help_heading = "Buffers")]
    pub buffers_size: Option<ByteSize>,
}

/// A byte count: a plain number, or a number with `KiB`, `MiB` or `GiB`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || format!("`{s}`: expected a byte count such as 65536, 64KiB or 1MiB");
        let n: usize = num.parse().map_err(|_| bad())?;
        let mult: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}`: too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => usize::try_from(n)
                .map(ByteSize)
                .map_err(|_| serde::de::Error::custom("byte count too large")),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A Unix file mode written in octal (`"0660"`, `"660"`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.strip_prefix("0o").unwrap_or(t);
        match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(FileMode(m)),
            _ => Err(format!("`{s}`: expected an octal file mode such as 0660")),
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A duration written for humans: `"500ms"`, `"30s"`, `"2m"`, `"1h 30m"`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HumanDuration(pub Duration);

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}`: {e}; expected a duration such as 500ms, 30s or 2m"))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// `metrics = "ADDR"`, `metrics = "off"` or `metrics = false`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MetricsSetting {
    /// Serve at this address.
    On(SocketAddr),
    /// Do not serve metrics.
    Off,
}

impl<'de> Deserialize<'de> for MetricsSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(false) => Ok(Self::Off),
            Raw::Bool(true) => Ok(Self::On(default_metrics_addr())),
            Raw::Str(s) if s == "off" => Ok(Self::Off),
            Raw::Str(s) => s.parse().map(Self::On).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{s}`: expected an address such as 127.0.0.1:9500, or \"off\""
                ))
            }),
        }
    }
}

/// The TOML file, as written (every key optional).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `workers`
    pub workers: Option<usize>,
    /// `io`
    pub io: Option<IoMode>,
    /// `pin`
    pub pin: Option<bool>,
    /// `metrics`
    pub metrics: Option<MetricsSetting>,
    /// `[listeners]`
    #[serde(default)]
    pub listeners: FileListeners,
    /// `[limits]`
    #[serde(default)]
    pub limits: FileLimits,
    /// `[timeouts]`
    #[serde(default)]
    pub timeouts: FileTimeouts,
    /// `[buffers]`
    #[serde(default)]
    pub buffers: FileBuffers,
}

/// `[listeners]`
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileListeners {
    /// FastCGI addresses.
    #[serde(default)]
    pub fastcgi: Vec<ListenAddr>,
    /// SCGI addresses.
    #[serde(default)]
    pub scgi: Vec<ListenAddr>,
    /// Mode of Unix socket files.
    pub socket_mode: Option<FileMode>,
    /// Owner of Unix socket files.
    pub socket_owner: Option<String>,
    /// Group of Unix socket files.
    pub socket_group: Option<String>,
    /// listen(2) backlog.
    pub backlog: Option<u32>,
}

/// `[limits]`
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each key is documented on `Limits`
pub struct FileLimits {
    pub max_params_bytes: Option<ByteSize>,
    pub max_params_pairs: Option<usize>,
    pub max_scgi_header_bytes: Option<ByteSize>,
    pub max_headers: Option<usize>,
    pub max_body_buffer_bytes: Option<ByteSize>,
    pub max_requests_per_connection: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub mpxs_conns: Option<bool>,
    pub send_queue_high_water: Option<ByteSize>,
}

/// `[timeouts]`
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each key is documented on `Timeouts`
pub struct FileTimeouts {
    pub params: Option<HumanDuration>,
    pub body_idle: Option<HumanDuration>,
    pub handler: Option<HumanDuration>,
    pub write: Option<HumanDuration>,
    pub keepalive_idle: Option<HumanDuration>,
    pub drain: Option<HumanDuration>,
    pub drain_linger: Option<HumanDuration>,
}

/// `[buffers]`
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileBuffers {
    /// Registered buffers per worker.
    pub count: Option<usize>,
    /// Bytes per buffer.
    pub size: Option<ByteSize>,
}

/// Protocol limits, per request, connection or worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Bytes of FastCGI params per request.
    pub max_params_bytes: usize,
    /// FastCGI params per request.
    pub max_params_pairs: usize,
    /// Bytes of an SCGI header.
    pub max_scgi_header_bytes: usize,
    /// Response headers per response.
    pub max_headers: usize,
    /// Request body bytes buffered per request.
    pub max_body_buffer_bytes: usize,
    /// FastCGI requests in flight per connection.
    pub max_requests_per_connection: usize,
    /// Open connections per worker.
    pub max_connections: usize,
    /// Requests in flight per worker.
    pub max_in_flight: usize,
    /// Whether FastCGI connections may carry several requests at once.
    pub mpxs_conns: bool,
    /// Send-queue bytes per connection above which producers wait.
    pub send_queue_high_water: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
            max_params_pairs: DEFAULT_MAX_PARAMS_PAIRS,
            max_scgi_header_bytes: DEFAULT_MAX_SCGI_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_buffer_bytes: DEFAULT_MAX_BODY_BUFFER_BYTES,
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            mpxs_conns: DEFAULT_MPXS_CONNS,
            send_queue_high_water: DEFAULT_SEND_QUEUE_HIGH_WATER,
        }
    }
}

/// Timeouts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeouts {
    /// Receiving params / SCGI header.
    pub params: Duration,
    /// Longest pause inside a body.
    pub body_idle: Duration,
    /// Handler until its response head.
    pub handler: Duration,
    /// Peer taking response bytes.
    pub write: Duration,
    /// Idle kept-alive connection.
    pub keepalive_idle: Duration,
    /// Drain after a shutdown signal.
    pub drain: Duration,
    /// Quiet time before an idle connection closes while draining.
    pub drain_linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            params: DEFAULT_PARAMS_TIMEOUT,
            body_idle: DEFAULT_BODY_IDLE_TIMEOUT,
            handler: DEFAULT_HANDLER_TIMEOUT,
            write: DEFAULT_WRITE_TIMEOUT,
            keepalive_idle: DEFAULT_KEEPALIVE_IDLE_TIMEOUT,
            drain: DEFAULT_DRAIN_TIMEOUT,
            drain_linger: DEFAULT_DRAIN_LINGER,
        }
    }
}

impl Limits {
    /// The limits the protocol engines enforce.
    pub fn engine(&self) -> EngineLimits {
        EngineLimits {
            max_params_bytes: self.max_params_bytes,
            max_params_pairs: self.max_params_pairs,
            max_scgi_header_bytes: self.max_scgi_header_bytes,
            max_headers: self.max_headers,
            max_body_buffer_bytes: self.max_body_buffer_bytes,
            max_requests_per_connection: self.max_requests_per_connection,
            max_connections: self.max_connections,
            mpxs_conns: self.mpxs_conns,
            send_queue_high_water: self.send_queue_high_water,
        }
    }
}

impl Timeouts {
    /// The timeouts the protocol engines enforce.
    pub fn engine(&self) -> EngineTimeouts {
        EngineTimeouts {
            params: self.params,
            body_idle: self.body_idle,
            keepalive_idle: self.keepalive_idle,
            drain_linger: self.drain_linger,
        }
    }
}

/// Mode and owner of Unix socket files, as configured (names resolved by `main`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SocketFileSettings {
    /// File mode.
    pub mode: Option<FileMode>,
    /// Owner user name or uid.
    pub owner: Option<String>,
    /// Owner group name or gid.
    pub group: Option<String>,
}

/// The merged, validated configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// Configured listeners; empty when none was given (see [`Config::default_listeners`]).
    pub listeners: Vec<ListenerSpec>,
    /// Unix socket file mode and owner.
    pub socket_files: SocketFileSettings,
    /// listen(2) backlog.
    pub backlog: u32,
    /// Worker threads.
    pub workers: usize,
    /// I/O backend mode.
    pub io: IoMode,
    /// Pin workers to cores.
    pub pin: bool,
    /// Metrics address, `None` when disabled.
    pub metrics: Option<SocketAddr>,
    /// Limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Registered buffers per worker.
    pub buffers: BufPoolConfig,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a bad value.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

fn default_metrics_addr() -> SocketAddr {
    DEFAULT_METRICS_ADDR
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9500)))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Parse the process's arguments and the file they name.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        Self::merge(cli, file.unwrap_or_default())
    }

    /// Merge command line over file over defaults, and validate.
    pub fn merge(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let (fastcgi, scgi) = if cli.fastcgi.is_empty() && cli.scgi.is_empty() {
            (file.listeners.fastcgi, file.listeners.scgi)
        } else {
            (cli.fastcgi, cli.scgi)
        };
        let listeners = fastcgi
            .into_iter()
            .map(|a| ListenerSpec::new(Protocol::FastCgi, a))
            .chain(
                scgi.into_iter()
                    .map(|a| ListenerSpec::new(Protocol::Scgi, a)),
            )
            .collect();
        let pin = if cli.no_pin {
            false
        } else if cli.pin {
            true
        } else {
            file.pin.unwrap_or(true)
        };
        let metrics = if cli.no_metrics {
            None
        } else if let Some(a) = cli.metrics {
            Some(a)
        } else {
            match file.metrics {
                Some(MetricsSetting::Off) => None,
                Some(MetricsSetting::On(a)) => Some(a),
                None => Some(default_metrics_addr()),
            }
        };
        let fl = file.limits;
        let d = Limits::default();
        let bytes = |c: Option<ByteSize>, f: Option<ByteSize>, d: usize| c.or(f).map_or(d, |b| b.0);
        let limits = Limits {
            max_params_bytes: bytes(
                cli.max_params_bytes,
                fl.max_params_bytes,
                d.max_params_bytes,
            ),
            max_params_pairs: cli
                .max_params_pairs
                .or(fl.max_params_pairs)
                .unwrap_or(d.max_params_pairs),
            max_scgi_header_bytes: bytes(
                cli.max_scgi_header_bytes,
                fl.max_scgi_header_bytes,
                d.max_scgi_header_bytes,
            ),
            max_headers: cli.max_headers.or(fl.max_headers).unwrap_or(d.max_headers),
            max_body_buffer_bytes: bytes(
                cli.max_body_buffer_bytes,
                fl.max_body_buffer_bytes,
                d.max_body_buffer_bytes,
            ),
            max_requests_per_connection: cli
                .max_requests_per_connection
                .or(fl.max_requests_per_connection)
                .unwrap_or(d.max_requests_per_connection),
            max_connections: cli
                .max_connections
                .or(fl.max_connections)
                .unwrap_or(d.max_connections),
            max_in_flight: cli
                .max_in_flight
                .or(fl.max_in_flight)
                .unwrap_or(d.max_in_flight),
            mpxs_conns: cli.mpxs_conns.or(fl.mpxs_conns).unwrap_or(d.mpxs_conns),
            send_queue_high_water: bytes(
                cli.send_queue_high_water,
                fl.send_queue_high_water,
                d.send_queue_high_water,
            ),
        };
        let ft = file.timeouts;
        let dt = Timeouts::default();
        let dur = |c: Option<Duration>, f: Option<HumanDuration>, d: Duration| {
            c.or(f.map(|h| h.0)).unwrap_or(d)
        };
        let timeouts = Timeouts {
            params: dur(cli.params_timeout, ft.params, dt.params),
            body_idle: dur(cli.body_idle_timeout, ft.body_idle, dt.body_idle),
            handler: dur(cli.handler_timeout, ft.handler, dt.handler),
            write: dur(cli.write_timeout, ft.write, dt.write),
            keepalive_idle: dur(
                cli.keepalive_idle_timeout,
                ft.keepalive_idle,
                dt.keepalive_idle,
            ),
            drain: dur(cli.drain_timeout, ft.drain, dt.drain),
            drain_linger: dur(cli.drain_linger, ft.drain_linger, dt.drain_linger),
        };
        let buffers = BufPoolConfig {
            count: cli
                .buffers_count
                .or(file.buffers.count)
                .unwrap_or(bufpool::DEFAULT_BUFFER_COUNT),
            size: bytes(
                cli.buffers_size,
                file.buffers.size,
                bufpool::DEFAULT_BUFFER_SIZE,
            ),
        };
        let config = Self {
            listeners,
            socket_files: SocketFileSettings {
                mode: cli.socket_mode.or(file.listeners.socket_mode),
                owner: cli.socket_owner.or(file.listeners.socket_owner),
                group: cli.socket_group.or(file.listeners.socket_group),
            },
            backlog: cli
                .backlog
                .or(file.listeners.backlog)
                .unwrap_or(DEFAULT_BACKLOG),
            workers: cli.workers.or(file.workers).unwrap_or_else(default_workers),
            io: cli.io.or(file.io).unwrap_or_default(),
            pin,
            metrics,
            limits,
            timeouts,
            buffers,
        };
        config.validate()?;
        Ok(config)
    }

    /// The listeners used when none is configured and none is inherited from systemd.
    pub fn default_listeners() -> Vec<ListenerSpec> {
        [
            (Protocol::FastCgi, DEFAULT_FASTCGI_ADDR),
            (Protocol::Scgi, DEFAULT_SCGI_ADDR),
        ]
        .into_iter()
        .filter_map(|(p, a)| a.parse().ok().map(|a| ListenerSpec::new(p, a)))
        .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return bad(format!(
                "workers = {}: must be between 1 and {MAX_WORKERS}",
                self.workers
            ));
        }
        if self.backlog == 0 {
            return bad("[listeners] backlog must be at least 1".into());
        }
        let l = &self.limits;
        for (key, v) in [
            ("max_params_bytes", l.max_params_bytes),
            ("max_params_pairs", l.max_params_pairs),
            ("max_scgi_header_bytes", l.max_scgi_header_bytes),
            ("max_headers", l.max_headers),
            ("max_body_buffer_bytes", l.max_body_buffer_bytes),
            ("max_connections", l.max_connections),
            ("max_in_flight", l.max_in_flight),
            ("send_queue_high_water", l.send_queue_high_water),
        ] {
            if v == 0 {
                return bad(format!("[limits] {key} must be at least 1"));
            }
        }
        if !(1..=MAX_FASTCGI_REQUEST_ID).contains(&l.max_requests_per_connection) {
            return bad(format!(
                "[limits] max_requests_per_connection = {}: must be between 1 and \
                 {MAX_FASTCGI_REQUEST_ID} (FastCGI request ids are 16-bit)",
                l.max_requests_per_connection
            ));
        }
        let t = &self.timeouts;
        for (key, v) in [
            ("params", t.params),
            ("body_idle", t.body_idle),
            ("handler", t.handler),
            ("write", t.write),
            ("keepalive_idle", t.keepalive_idle),
        ] {
            if v.is_zero() {
                return bad(format!("[timeouts] {key} must be longer than 0"));
            }
        }
        if self.buffers.count > bufpool::MAX_BUFFER_COUNT {
            return bad(format!(
                "[buffers] count = {}: at most {} registered buffers per worker",
                self.buffers.count,
                bufpool::MAX_BUFFER_COUNT
            ));
        }
        if self.buffers.count > 0
            && (self.buffers.size == 0 || self.buffers.size > bufpool::MAX_BUFFER_SIZE)
        {
            return bad(format!(
                "[buffers] size = {}: must be between 1 byte and 1GiB",
                self.buffers.size
            ));
        }
        Ok(())
    }
}

/// Read and parse a TOML file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// Parse TOML text.
pub fn parse_toml(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
