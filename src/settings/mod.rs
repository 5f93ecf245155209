//! Settings: one type, [`Settings`], with every default, read from a TOML file (serde) and
//! used by the engines and the runtime as is. The command line ([`Cli`]) lays itself over
//! it. Each default is written once: the limits and timeouts in [`Limits`] and [`Timeouts`]
//! (their `DEFAULT_*` constants), the rest in this module.
//!
//! File layout (`deploy/ringgate.example.toml` lists every key with its default;
//! `ringgate --check-config` prints the effective settings in this form):
//! ```toml
//! workers = 4            # default: the CPUs this process may use
//! io = "auto"            # auto | uring | epoll
//! pin = true
//! metrics = "127.0.0.1:9500"   # or "off"
//! [listeners]
//! fastcgi = ["127.0.0.1:9000", "unix:/run/ringgate/fastcgi.sock"]
//! scgi = ["127.0.0.1:9001"]
//! socket_mode = "0660"   # Unix socket files
//! backlog = 1024
//! [limits]
//! max_params_bytes = "64KiB"   # sizes: a number of bytes, or "64KiB", "1MiB"
//! [timeouts]
//! params = "10s"         # humantime: "500ms", "30s", "2m"
//! [buffers]
//! count = 0              # registered buffers per worker (off by default)
//! [receives]
//! buffers = 0            # provided buffers per worker for multishot receives (0: off)
//! [sends]
//! zerocopy_threshold = 0 # SEND_ZC for output chunks this large (0: off, the default)
//! [[cgi]]                # CGI scripts (repeatable): the binary runs the executor
//! root = "/usr/lib/git-core"
//! ```
//!
//! Reading settings does no I/O beyond reading the file: user and group names are resolved,
//! and sockets bound, when the [`Server`](crate::Server) starts.

mod cli;
pub mod units;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::app::cgi_exec::CgiRoot;
pub use crate::channel::{Limits, Timeouts};
pub use crate::rt::backend::IoMode;
pub use crate::rt::bufpool::BufPoolConfig as Buffers;
pub use crate::rt::listener::ListenAddr;
pub use crate::rt::recv_ring::RecvConfig as Receives;
pub use cli::{CgiOptions, Cli};
pub use units::{ByteSize, FileMode};

use crate::rt::bufpool;
use crate::rt::listener::{ListenerProtocol, ListenerSpec};
use crate::rt::recv_ring;
use crate::rt::zerocopy::{self, ZcPolicy};

/// FastCGI listener used when no listener is configured (nor inherited from systemd).
pub const DEFAULT_FASTCGI_ADDR: &str = "127.0.0.1:9000";
/// SCGI listener used when no listener is configured (nor inherited from systemd).
pub const DEFAULT_SCGI_ADDR: &str = "127.0.0.1:9001";
/// Where `/metrics` is served by default: loopback only, on a port outside the common
/// FastCGI/SCGI ones.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    9500,
));
/// Default `listen(2)` backlog: the queue of connections the kernel completes before a
/// worker accepts them (per socket, so per worker for TCP). The kernel caps it at
/// `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 1024;
/// Most worker threads accepted.
pub const MAX_WORKERS: usize = 4096;
/// Largest FastCGI request id, so the most requests one connection can have in flight.
pub const MAX_FASTCGI_REQUEST_ID: usize = u16::MAX as usize;

/// Everything a [`Server`](crate::Server) needs to know, with its defaults
/// (`Settings::default()`). Fields are public: build it in code, read it from a file with
/// [`Settings::from_file`], or from the command line with [`Cli`].
#[derive(Clone, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Worker threads, one per core [default: the CPUs this process may use].
    pub workers: usize,
    /// I/O backend.
    pub io: IoMode,
    /// Pin each worker thread to its own core.
    pub pin: bool,
    /// Where Prometheus metrics are served.
    pub metrics: MetricsSetting,
    /// `[listeners]`: addresses and socket options.
    pub listeners: Listeners,
    /// `[limits]`.
    pub limits: Limits,
    /// `[timeouts]`.
    pub timeouts: Timeouts,
    /// `[buffers]`: registered io_uring buffers per worker.
    pub buffers: Buffers,
    /// `[receives]`: multishot receives into provided buffers (io_uring backend).
    pub receives: Receives,
    /// `[sends]`: zero-copy sends (io_uring backend, TCP connections).
    pub sends: Sends,
    /// `[[cgi]]`: roots of CGI scripts. When there is any, the `ringgate` binary serves the
    /// CGI-script executor instead of its demo.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cgi: Vec<CgiRoot>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            io: IoMode::default(),
            pin: true,
            metrics: MetricsSetting::On(DEFAULT_METRICS_ADDR),
            listeners: Listeners::default(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            buffers: Buffers {
                count: bufpool::DEFAULT_BUFFER_COUNT,
                size: bufpool::DEFAULT_BUFFER_SIZE,
            },
            receives: Receives::default(),
            sends: Sends::default(),
            cgi: Vec::new(),
        }
    }
}

/// `[listeners]`.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// FastCGI addresses. With no listener at all (and none inherited from systemd),
    /// [`DEFAULT_FASTCGI_ADDR`] and [`DEFAULT_SCGI_ADDR`] are used.
    pub fastcgi: Vec<ListenAddr>,
    /// SCGI addresses.
    pub scgi: Vec<ListenAddr>,
    /// Mode of Unix socket files (octal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_mode: Option<FileMode>,
    /// Owner (user name or uid) of Unix socket files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_owner: Option<String>,
    /// Group (name or gid) of Unix socket files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_group: Option<String>,
    /// `listen(2)` backlog per socket.
    pub backlog: u32,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            fastcgi: Vec::new(),
            scgi: Vec::new(),
            socket_mode: None,
            socket_owner: None,
            socket_group: None,
            backlog: DEFAULT_BACKLOG,
        }
    }
}

/// `[sends]`: when the io_uring backend sends zero-copy (`IORING_OP_SEND_ZC`, see
/// `rt::zerocopy`). The kernel reports on every zero-copy send whether it copied after all
/// (it always does on loopback and veth); a connection whose sends are copied falls back to
/// plain sends by itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sends {
    /// Output chunks of at least this many bytes go zero-copy on TCP connections; 0 turns
    /// zero-copy off.
    #[serde(with = "units::bytes")]
    pub zerocopy_threshold: usize,
    /// Copied zero-copy sends in a row after which a connection sends plainly; 0 never falls
    /// back (forces zero-copy, for tests and measurements).
    pub zerocopy_fallback_after: u32,
}

impl Default for Sends {
    fn default() -> Self {
        Self {
            zerocopy_threshold: zerocopy::DEFAULT_ZEROCOPY_THRESHOLD,
            zerocopy_fallback_after: zerocopy::DEFAULT_ZEROCOPY_FALLBACK_AFTER,
        }
    }
}

impl Sends {
    /// The runtime's zero-copy policy; a connection pins at most `send_queue_high_water` bytes
    /// (or one send) in zero-copy sends the kernel has not released.
    pub(crate) fn policy(&self, send_queue_high_water: usize) -> ZcPolicy {
        ZcPolicy {
            threshold: self.zerocopy_threshold,
            fallback_after: self.zerocopy_fallback_after,
            max_pinned: send_queue_high_water,
        }
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

impl MetricsSetting {
    /// The address, when on.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Self::On(a) => Some(a),
            Self::Off => None,
        }
    }
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
            Raw::Bool(true) => Ok(Self::On(DEFAULT_METRICS_ADDR)),
            Raw::Str(s) if s == "off" => Ok(Self::Off),
            Raw::Str(s) => s.parse().map(Self::On).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{s}`: expected an address such as 127.0.0.1:9500, or \"off\""
                ))
            }),
        }
    }
}

impl Serialize for MetricsSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::On(a) => s.collect_str(a),
            Self::Off => s.serialize_str("off"),
        }
    }
}

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
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

impl Settings {
    /// Reads and validates a TOML file; keys it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        Self::from_file_over(path, &Self::default())
    }

    /// Reads and validates a TOML file; keys it leaves out keep their values in `defaults`
    /// (a program's own defaults, e.g. metrics off).
    pub fn from_file_over(path: &Path, defaults: &Self) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parse_error = |source| SettingsError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        };
        // Parsed alone first, so that errors name the file's line and column.
        let mut settings: Self = toml::from_str(&text).map_err(parse_error)?;
        if defaults != &Self::default() {
            let mut table = toml::Table::try_from(defaults)
                .map_err(|e| SettingsError::Invalid(format!("defaults: {e}")))?;
            merge(&mut table, toml::from_str(&text).map_err(parse_error)?);
            settings = table.try_into().map_err(parse_error)?;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Parses TOML text (not validated: see [`Settings::validate`]).
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The settings as a TOML file (what `--check-config` prints).
    pub fn to_toml(&self) -> String {
        // Every field serializes to a TOML value (tables after plain keys), so this cannot
        // fail; an error would be a bug in the types above.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the settings: {e}\n"))
    }

    /// The configured listeners, FastCGI first (empty when none is configured).
    pub(crate) fn listener_specs(&self) -> Vec<ListenerSpec> {
        let l = &self.listeners;
        l.fastcgi
            .iter()
            .map(|a| ListenerSpec::new(ListenerProtocol::FastCgi, a.clone()))
            .chain(
                l.scgi
                    .iter()
                    .map(|a| ListenerSpec::new(ListenerProtocol::Scgi, a.clone())),
            )
            .collect()
    }

    /// The listeners used when none is configured and none is inherited from systemd.
    pub(crate) fn default_listeners() -> Vec<ListenerSpec> {
        [
            (ListenerProtocol::FastCgi, DEFAULT_FASTCGI_ADDR),
            (ListenerProtocol::Scgi, DEFAULT_SCGI_ADDR),
        ]
        .into_iter()
        .filter_map(|(p, a)| a.parse().ok().map(|a| ListenerSpec::new(p, a)))
        .collect()
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |msg: String| Err(SettingsError::Invalid(msg));
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return bad(format!(
                "workers = {}: must be between 1 and {MAX_WORKERS}",
                self.workers
            ));
        }
        if self.listeners.backlog == 0 {
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
        let r = &self.receives;
        if r.buffers > recv_ring::MAX_RECV_BUFFERS {
            return bad(format!(
                "[receives] buffers = {}: at most {} per worker",
                r.buffers,
                recv_ring::MAX_RECV_BUFFERS
            ));
        }
        if r.buffers > 0 && (r.buffer_size == 0 || r.buffer_size > recv_ring::MAX_RECV_BUFFER_SIZE)
        {
            return bad(format!(
                "[receives] buffer_size = {}: must be between 1 byte and 1GiB",
                r.buffer_size
            ));
        }
        for root in &self.cgi {
            root.validate().map_err(SettingsError::Invalid)?;
        }
        Ok(())
    }
}

/// Lays `over` on `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
