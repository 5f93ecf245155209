//! `[[cgi]]`: one root of CGI scripts and how its scripts run, with every default written once
//! (the `DEFAULT_*` constants). The settings file holds one table per root; the command line's
//! `--cgi DIR` makes roots with these defaults and `--cgi-*` options override a value on every
//! root. This module only describes; it never touches the file system.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One directory of CGI scripts (`[[cgi]]` in the settings file).
///
/// ```toml
/// [[cgi]]
/// root = "/usr/lib/git-core"
/// timeout = "10m"
/// env = { GIT_PROJECT_ROOT = "/srv/git", GIT_HTTP_EXPORT_ALL = "1" }
/// ```
///
/// The limits on running scripts (`max_running`, `max_queued`) are per worker thread.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CgiRoot {
    /// Directory the scripts must resolve beneath (absolute).
    pub root: PathBuf,
    /// Longest a script may run in all (`--cgi-timeout`).
    #[serde(with = "crate::settings::units::duration")]
    pub timeout: Duration,
    /// Longest a script may take to write its response head; then 504.
    #[serde(with = "crate::settings::units::duration")]
    pub head_timeout: Duration,
    /// Longest a script may go without writing output while ringgate waits for it, or without
    /// taking request-body bytes while some wait for it.
    #[serde(with = "crate::settings::units::duration")]
    pub idle_timeout: Duration,
    /// Between SIGTERM and SIGKILL when a script's process group is ended.
    #[serde(with = "crate::settings::units::duration")]
    pub kill_grace: Duration,
    /// Scripts of this root running at once on one worker thread.
    pub max_running: usize,
    /// Requests of this root waiting for a running slot on one worker thread; more get 503.
    pub max_queued: usize,
    /// Longest a request waits for a running slot; then 503.
    #[serde(with = "crate::settings::units::duration")]
    pub queue_timeout: Duration,
    /// Largest response head (blank line included) a script may write; more is a 502.
    #[serde(with = "crate::settings::units::bytes")]
    pub max_head_bytes: usize,
    /// Output (head included) a script writes before the request body has fully arrived is
    /// held back up to this many bytes: nginx stops sending a request body once it has a
    /// response head. Past it the response starts anyway (a script that writes this much
    /// before reading its body would otherwise deadlock).
    #[serde(with = "crate::settings::units::bytes")]
    pub head_hold_bytes: usize,
    /// Request-body bytes held in memory for a script that reads slower than the front end
    /// sends (rounded up to 64 KiB blocks); past it the connection stops being read
    /// (backpressure).
    #[serde(with = "crate::settings::units::bytes")]
    pub body_spool_bytes: usize,
    /// Request-body bytes the spools of this root's scripts may hold together on one worker
    /// thread (rounded up to 64 KiB blocks). A request whose body needs spool when it is spent
    /// is answered 503 (its script ended) if its response head has not gone out yet, and
    /// waits (backpressure) otherwise. At least `body_spool_bytes`.
    #[serde(with = "crate::settings::units::bytes")]
    pub body_spool_budget_bytes: usize,
    /// Run scripts (and from directories) that are group- or world-writable.
    pub allow_writable: bool,
    /// Pass `HTTP_AUTHORIZATION` and `HTTP_PROXY_AUTHORIZATION` to scripts (RFC 3875 4.1.18
    /// leaves them out by default).
    pub pass_authorization: bool,
    /// Variables of ringgate's own environment passed to scripts (when set).
    pub pass_env: Vec<String>,
    /// Extra variables for every script of this root (e.g. `GIT_PROJECT_ROOT`). They win over
    /// `pass_env` and over the request's variables (a request can set only CGI/1.1 and
    /// `HTTP_*` ones: see the `env` module).
    pub env: BTreeMap<String, String>,
    /// stderr lines logged per second per worker for this root; the rest are counted.
    pub stderr_lines_per_second: u32,
    /// Where scripts' stderr goes (`--cgi-stderr`).
    pub stderr: StderrTo,
    /// End a script when its FastCGI front end closes the connection before the response is
    /// complete. The FastCGI specification makes a close the way a front end that does not
    /// multiplex aborts a request; nginx closes when its client leaves. (SCGI front ends may
    /// half-close after sending the request, so a close never ends an SCGI request's script.)
    pub stop_on_close: bool,
    /// Run scripts as this user (name or uid); needs privileges, and a fork instead of a
    /// spawn (see the module docs of `spawn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run scripts with this group (name or gid); same cost as `user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `RLIMIT_CPU` of scripts, in seconds; same cost as `user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_cpu: Option<u64>,
    /// `RLIMIT_AS` of scripts, in bytes; same cost as `user`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::settings::units::opt_bytes",
        default
    )]
    pub rlimit_as: Option<usize>,
    /// `RLIMIT_NOFILE` of scripts; same cost as `user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_nofile: Option<u64>,
    /// `RLIMIT_NPROC` of scripts (per user, so mostly useful with `user`); same cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_nproc: Option<u64>,
}

/// Where a script's stderr goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StderrTo {
    /// To ringgate's log, a line at a time with the request's identity, within
    /// `stderr_lines_per_second`.
    #[default]
    Log,
    /// To the front end as FastCGI `FCGI_STDERR` records, as the script writes it (nginx
    /// writes them to its error log); logged as with `log` on SCGI connections.
    Fastcgi,
}

impl std::fmt::Display for StderrTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Log => "log",
            Self::Fastcgi => "fastcgi",
        })
    }
}

impl std::str::FromStr for StderrTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "log" => Ok(Self::Log),
            "fastcgi" => Ok(Self::Fastcgi),
            _ => Err(format!("{s:?}: expected `log` or `fastcgi`")),
        }
    }
}

impl CgiRoot {
    /// Default for [`CgiRoot::timeout`]: long enough for a large `git clone`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default for [`CgiRoot::head_timeout`] (below the handler timeout's 60 s, so a slow
    /// script is answered 504 by the executor, which also kills it).
    pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default for [`CgiRoot::idle_timeout`].
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default for [`CgiRoot::kill_grace`].
    pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
    /// Default for [`CgiRoot::max_running`]: enough that a burst of slow scripts does not
    /// queue behind each other, few enough that a fork bomb of requests cannot exhaust PIDs.
    pub const DEFAULT_MAX_RUNNING: usize = 64;
    /// Default for [`CgiRoot::max_queued`].
    pub const DEFAULT_MAX_QUEUED: usize = 256;
    /// Default for [`CgiRoot::queue_timeout`].
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`CgiRoot::max_head_bytes`].
    pub const DEFAULT_MAX_HEAD_BYTES: usize = crate::proto::cgi::DEFAULT_MAX_RESPONSE_HEAD_BYTES;
    /// Default for [`CgiRoot::head_hold_bytes`].
    pub const DEFAULT_HEAD_HOLD_BYTES: usize = 1024 * 1024;
    /// Default for [`CgiRoot::body_spool_bytes`]: a 32 MiB upload to a script that echoes it
    /// completes even for a client that sends it all before reading.
    pub const DEFAULT_BODY_SPOOL_BYTES: usize = 64 * 1024 * 1024;
    /// Default for [`CgiRoot::body_spool_budget_bytes`]: four full spools at the default
    /// `body_spool_bytes`.
    pub const DEFAULT_BODY_SPOOL_BUDGET_BYTES: usize = 256 * 1024 * 1024;
    /// Default for [`CgiRoot::stderr_lines_per_second`].
    pub const DEFAULT_STDERR_LINES_PER_SECOND: u32 = 50;
    /// `PATH` given to scripts when ringgate's own environment has none.
    pub const FALLBACK_PATH: &'static str = "/usr/local/bin:/usr/bin:/bin";

    /// A root at `dir` with every default.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            root: dir.into(),
            ..Self::default()
        }
    }

    /// The default for [`CgiRoot::pass_env`].
    pub fn default_pass_env() -> Vec<String> {
        ["PATH", "LANG", "LC_ALL", "TZ"].map(String::from).to_vec()
    }

    /// Whether scripts need a fork with code run before `exec` (user, group, limits).
    pub fn needs_pre_exec(&self) -> bool {
        self.user.is_some()
            || self.group.is_some()
            || self.rlimit_cpu.is_some()
            || self.rlimit_as.is_some()
            || self.rlimit_nofile.is_some()
            || self.rlimit_nproc.is_some()
    }

    /// Checks the values' ranges; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let root = self.root.display();
        if !self.root.is_absolute() {
            return Err(format!("[[cgi]] root = {root:?}: must be an absolute path"));
        }
        for (key, v) in [
            ("timeout", self.timeout),
            ("head_timeout", self.head_timeout),
            ("idle_timeout", self.idle_timeout),
            ("queue_timeout", self.queue_timeout),
        ] {
            if v.is_zero() {
                return Err(format!("[[cgi]] {root}: {key} must be longer than 0"));
            }
        }
        for (key, v) in [
            ("body_spool_bytes", self.body_spool_bytes),
            ("max_running", self.max_running),
            ("max_head_bytes", self.max_head_bytes),
        ] {
            if v == 0 {
                return Err(format!("[[cgi]] {root}: {key} must be at least 1"));
            }
        }
        if self.body_spool_budget_bytes < self.body_spool_bytes {
            return Err(format!(
                "[[cgi]] {root}: body_spool_budget_bytes ({}) must be at least body_spool_bytes ({})",
                self.body_spool_budget_bytes, self.body_spool_bytes
            ));
        }
        for name in self.env.keys().chain(&self.pass_env) {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!(
                    "[[cgi]] {root}: {name:?} is not a valid environment variable name"
                ));
            }
        }
        if self.env.values().any(|v| v.contains('\0')) {
            return Err(format!("[[cgi]] {root}: an env value contains a NUL byte"));
        }
        Ok(())
    }
}

impl Default for CgiRoot {
    fn default() -> Self {
        Self {
            root: PathBuf::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            head_timeout: Self::DEFAULT_HEAD_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            kill_grace: Self::DEFAULT_KILL_GRACE,
            max_running: Self::DEFAULT_MAX_RUNNING,
            max_queued: Self::DEFAULT_MAX_QUEUED,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            max_head_bytes: Self::DEFAULT_MAX_HEAD_BYTES,
            head_hold_bytes: Self::DEFAULT_HEAD_HOLD_BYTES,
            body_spool_bytes: Self::DEFAULT_BODY_SPOOL_BYTES,
            body_spool_budget_bytes: Self::DEFAULT_BODY_SPOOL_BUDGET_BYTES,
            allow_writable: false,
            pass_authorization: false,
            pass_env: Self::default_pass_env(),
            env: BTreeMap::new(),
            stderr_lines_per_second: Self::DEFAULT_STDERR_LINES_PER_SECOND,
            stderr: StderrTo::Log,
            stop_on_close: true,
            user: None,
            group: None,
            rlimit_cpu: None,
            rlimit_as: None,
            rlimit_nofile: None,
            rlimit_nproc: None,
        }
    }
}
