//! The command line: every setting as an option, laid over the settings file given with
//! `--config` (or over the program's defaults), for the `ringgate` binary and for every
//! [`Program`] built on the library, named after it; the CGI executor's options
//! ([`CgiOptions`]) for the programs that serve it only. The `[default: ...]` shown by `--help`
//! is read from the program's default [`Settings`], never written here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use super::units::{parse_duration, ByteSize, FileMode};
use super::{CgiRoot, IoMode, ListenAddr, MetricsSetting, Settings, SettingsError};
use crate::Program;

/// The `ringgate` binary's one-line description.
const RINGGATE_ABOUT: &str = "Thread-per-core io_uring FastCGI/SCGI gateway";

/// What the `ringgate` binary's `--help` says first.
const RINGGATE_INTRO: &str = "\
Accepts FastCGI and SCGI connections from a web server (nginx, Apache, HAProxy, ...) and
serves the requests on one worker thread per CPU core, using io_uring where the kernel
allows it and epoll otherwise.";

/// The examples every program's `--help` shows, `{name}` standing for the program.
const EXAMPLES: &str = "\
Examples:
  {name}
      FastCGI on {fastcgi} and SCGI on {scgi} (the defaults)
  {name} --fastcgi unix:/run/{name}/fastcgi.sock --socket-mode 0660 --socket-group www-data
      FastCGI on a Unix socket the web server's group may connect to
  {name} --config /etc/{name}/{name}.toml --workers 4
      settings from a file, with the worker count overridden
  {name} --config /etc/{name}/{name}.toml --check-config
      check the file and print the effective settings";

/// The example only the `ringgate` binary (the CGI executor's options) shows.
const CGI_EXAMPLE: &str = "
  ringgate --fastcgi unix:/run/ringgate/cgi.sock --cgi /usr/lib/git-core --cgi-timeout 10m
      run CGI scripts (here git-http-backend) for nginx, as fcgiwrap does";

/// What every program's `--help` says last.
const TRAILER: &str = "\
Every option can also be set in the TOML file given with --config: each option's help ends
with its file key (\"config: ...\"), and a command-line option wins over the file.
Under systemd socket activation, sockets named (FileDescriptorName=) \"fastcgi\" or \"scgi\"
are used as listeners as well.
Log verbosity: RUST_LOG=debug (default: info).";

/// Command-line options, the same for every program built on the library. A
/// [`Program`] parses them (its `--help` shows the real defaults) and turns them into
/// [`Settings`]; [`Cli::settings`] does the latter for a program that parses them itself.
// The field docs are the `--help` text, where `[section] key` names the file key.
#[allow(rustdoc::broken_intra_doc_links)] // `[limits] key` in the help text is not a link.
#[derive(Parser, Debug, Default)]
#[command(name = "ringgate", version, about = RINGGATE_ABOUT)]
pub struct Cli {
    /// Read settings from this TOML file; command-line options override it.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the settings (file and options), print the effective ones and exit: 0 when
    /// they are valid, 2 otherwise. Nothing is bound or started.
    #[arg(long, visible_alias = "test-config")]
    pub check_config: bool,

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

    /// listen(2) backlog per socket. config: [listeners] backlog
    #[arg(long, value_name = "N", help_heading = "Listeners")]
    pub backlog: Option<u32>,

    /// Worker threads [default: the CPUs this process may use]. config: workers
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// I/O backend: auto (io_uring if the kernel allows it, else epoll), uring (fail
    /// without io_uring) or epoll. config: io
    #[arg(long, value_name = "MODE")]
    pub io: Option<IoMode>,

    /// Pin each worker thread to its own CPU core (the default). config: pin = true
    #[arg(long, overrides_with = "no_pin")]
    pub pin: bool,

    /// Do not pin worker threads. config: pin = false
    #[arg(long, overrides_with = "pin")]
    pub no_pin: bool,

    /// Serve Prometheus metrics at http://ADDR/metrics. config: metrics = "ADDR"
    #[arg(long, value_name = "ADDR", conflicts_with = "no_metrics")]
    pub metrics: Option<SocketAddr>,

    /// Do not serve metrics. config: metrics = "off"
    #[arg(long)]
    pub no_metrics: bool,

    /// Bytes of FastCGI params per request. config: [limits] max_params_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_params_bytes: Option<ByteSize>,

    /// FastCGI params (SCGI variables) per request. config: [limits] max_params_pairs
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_params_pairs: Option<usize>,

    /// Bytes of an SCGI request header. config: [limits] max_scgi_header_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_scgi_header_bytes: Option<ByteSize>,

    /// Request headers (HTTP_* variables) per request; more are answered 431.
    /// config: [limits] max_headers
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_headers: Option<usize>,

    /// Request body bytes buffered per request before reading pauses.
    /// config: [limits] max_body_buffer_bytes
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_body_buffer_bytes: Option<ByteSize>,

    /// FastCGI requests in flight per connection, 1-65535.
    /// config: [limits] max_requests_per_connection
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_requests_per_connection: Option<usize>,

    /// Open connections per worker. config: [limits] max_connections
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_connections: Option<usize>,

    /// Requests in flight per worker. config: [limits] max_in_flight
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_in_flight: Option<usize>,

    /// Accept several FastCGI requests on one connection (FCGI_MPXS_CONNS).
    /// config: [limits] mpxs_conns
    #[arg(long, value_name = "BOOL", help_heading = "Limits")]
    pub mpxs_conns: Option<bool>,

    /// Bytes queued for sending per connection above which responses wait.
    /// config: [limits] send_queue_high_water
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub send_queue_high_water: Option<ByteSize>,

    /// Time to receive a request's params or SCGI header. config: [timeouts] params
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub params_timeout: Option<Duration>,

    /// Longest pause inside a request body. config: [timeouts] body_idle
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub body_idle_timeout: Option<Duration>,

    /// Time a handler has to start its response. config: [timeouts] handler
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub handler_timeout: Option<Duration>,

    /// Longest wait for the peer to take more response bytes. config: [timeouts] write
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub write_timeout: Option<Duration>,

    /// Idle time before a kept-alive connection is closed. config: [timeouts] keepalive_idle
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub keepalive_idle_timeout: Option<Duration>,

    /// Time in-flight requests get after SIGTERM/SIGINT. config: [timeouts] drain
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,

    /// While draining, how long an idle connection must stay quiet before it closes, so a
    /// request already on its way is answered (refused) rather than lost.
    /// config: [timeouts] drain_linger
    #[arg(long, value_name = "DURATION", help_heading = "Timeouts", value_parser = parse_duration)]
    pub drain_linger: Option<Duration>,

    /// Registered (io_uring fixed) buffers per worker; 0 disables them (they measured no
    /// faster on sockets). config: [buffers] count
    #[arg(long, value_name = "N", help_heading = "Buffers")]
    pub buffers_count: Option<usize>,

    /// Size of each registered buffer. config: [buffers] size
    #[arg(long, value_name = "SIZE", help_heading = "Buffers")]
    pub buffers_size: Option<ByteSize>,

    /// Provided buffers per worker for io_uring multishot receives (rounded up to a power of
    /// two); 0, the default, turns them off (reads wait for readiness). config: [receives]
    /// buffers
    #[arg(long, value_name = "N", help_heading = "Receives")]
    pub recv_buffers: Option<usize>,

    /// Size of each provided receive buffer. config: [receives] buffer_size
    #[arg(long, value_name = "SIZE", help_heading = "Receives")]
    pub recv_buffer_size: Option<ByteSize>,

    /// Send output chunks of at least SIZE zero-copy (io_uring SEND_ZC, TCP only); 0 turns
    /// it off. config: [sends] zerocopy_threshold
    #[arg(long, value_name = "SIZE", help_heading = "Sends")]
    pub zerocopy_threshold: Option<ByteSize>,

    /// Copied zero-copy sends in a row (the kernel's report) after which a connection sends
    /// plainly; 0 never falls back. config: [sends] zerocopy_fallback_after
    #[arg(long, value_name = "N", help_heading = "Sends")]
    pub zerocopy_fallback_after: Option<u32>,

    /// The CGI executor's options (`--cgi DIR`, `--cgi-*`): on the command line of the
    /// `ringgate` binary only ([`Program::with_cgi_executor`](crate::Program::with_cgi_executor)).
    #[arg(skip)]
    pub cgi: CgiOptions,
}

/// The command-line options of the CGI-script executor ([`crate::app::cgi_exec`]), which the
/// `ringgate` binary serves with `--cgi DIR`. A program of its own does not take them.
// The field docs are the `--help` text, where `[[cgi]] key` names the file key.
#[allow(rustdoc::broken_intra_doc_links)] // `[[cgi]] key` in the help text is not a link.
#[derive(clap::Args, Debug, Default)]
pub struct CgiOptions {
    /// Run the CGI scripts beneath DIR (the executor fcgiwrap is for) instead of the demo.
    /// Repeatable; replaces the file's [[cgi]] roots. config: [[cgi]] root = "DIR"
    #[arg(long, value_name = "DIR", help_heading = "CGI scripts")]
    pub cgi: Vec<PathBuf>,

    /// Longest a CGI script may run in all (every root). config: [[cgi]] timeout
    #[arg(long, value_name = "DURATION", help_heading = "CGI scripts", value_parser = parse_duration)]
    pub cgi_timeout: Option<Duration>,

    /// Longest a CGI script may take to write its response head; then 504.
    /// config: [[cgi]] head_timeout
    #[arg(long, value_name = "DURATION", help_heading = "CGI scripts", value_parser = parse_duration)]
    pub cgi_head_timeout: Option<Duration>,

    /// Longest a CGI script may go without writing output, or without taking request-body
    /// bytes that wait for it. config: [[cgi]] idle_timeout
    #[arg(long, value_name = "DURATION", help_heading = "CGI scripts", value_parser = parse_duration)]
    pub cgi_idle_timeout: Option<Duration>,

    /// Between SIGTERM and SIGKILL when a script's process group is ended.
    /// config: [[cgi]] kill_grace
    #[arg(long, value_name = "DURATION", help_heading = "CGI scripts", value_parser = parse_duration)]
    pub cgi_kill_grace: Option<Duration>,

    /// CGI scripts of one root running at once per worker. config: [[cgi]] max_running
    #[arg(long, value_name = "N", help_heading = "CGI scripts")]
    pub cgi_max_running: Option<usize>,

    /// Requests waiting for a running slot per root and worker; more get 503.
    /// config: [[cgi]] max_queued
    #[arg(long, value_name = "N", help_heading = "CGI scripts")]
    pub cgi_max_queued: Option<usize>,

    /// Longest a request waits for a running slot; then 503. config: [[cgi]] queue_timeout
    #[arg(long, value_name = "DURATION", help_heading = "CGI scripts", value_parser = parse_duration)]
    pub cgi_queue_timeout: Option<Duration>,

    /// Largest response head a script may write; more is a 502. config: [[cgi]] max_head_bytes
    #[arg(long, value_name = "SIZE", help_heading = "CGI scripts")]
    pub cgi_max_head_bytes: Option<ByteSize>,

    /// Request-body bytes the spools of one root's scripts may hold together on one worker;
    /// a request that needs more before its response head gets 503.
    /// config: [[cgi]] body_spool_budget_bytes
    #[arg(long, value_name = "SIZE", help_heading = "CGI scripts")]
    pub cgi_body_spool_budget: Option<ByteSize>,

    /// Where scripts' stderr goes: `log` (ringgate's log, rate-limited) or `fastcgi`
    /// (FCGI_STDERR records to the front end, which logs them; logged on SCGI).
    /// config: [[cgi]] stderr
    #[arg(long, value_name = "TO", help_heading = "CGI scripts")]
    pub cgi_stderr: Option<crate::app::cgi_exec::config::StderrTo>,

    /// Extra environment variable NAME=VALUE for every script (e.g.
    /// GIT_PROJECT_ROOT=/srv/git). Repeatable. config: [[cgi]] env = { NAME = "VALUE" }
    #[arg(long, value_name = "NAME=VALUE", help_heading = "CGI scripts", value_parser = parse_env_pair)]
    pub cgi_env: Vec<(String, String)>,

    /// Run scripts that are (or whose directory is) group- or world-writable.
    /// config: [[cgi]] allow_writable = true
    #[arg(long, help_heading = "CGI scripts")]
    pub cgi_allow_writable: bool,
}

/// `NAME=VALUE`.
fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

/// Each option's default as `--help` shows it, read from the defaults in use.
fn shown_defaults(d: &Settings) -> Vec<(&'static str, String)> {
    let (l, t) = (&d.limits, &d.timeouts);
    let size = |n: usize| ByteSize(n).to_string();
    let time = super::units::format_duration;
    vec![
        ("backlog", d.listeners.backlog.to_string()),
        ("io", d.io.to_string()),
        (
            "metrics",
            d.metrics.addr().map_or("off".into(), |a| a.to_string()),
        ),
        ("max_params_bytes", size(l.max_params_bytes)),
        ("max_params_pairs", l.max_params_pairs.to_string()),
        ("max_scgi_header_bytes", size(l.max_scgi_header_bytes)),
        ("max_headers", l.max_headers.to_string()),
        ("max_body_buffer_bytes", size(l.max_body_buffer_bytes)),
        (
            "max_requests_per_connection",
            l.max_requests_per_connection.to_string(),
        ),
        ("max_connections", l.max_connections.to_string()),
        ("max_in_flight", l.max_in_flight.to_string()),
        ("mpxs_conns", l.mpxs_conns.to_string()),
        ("send_queue_high_water", size(l.send_queue_high_water)),
        ("params_timeout", time(t.params)),
        ("body_idle_timeout", time(t.body_idle)),
        ("handler_timeout", time(t.handler)),
        ("write_timeout", time(t.write)),
        ("keepalive_idle_timeout", time(t.keepalive_idle)),
        ("drain_timeout", time(t.drain)),
        ("drain_linger", time(t.drain_linger)),
        ("buffers_count", d.buffers.count.to_string()),
        ("buffers_size", size(d.buffers.size)),
        ("recv_buffers", d.receives.buffers.to_string()),
        ("recv_buffer_size", size(d.receives.buffer_size)),
        ("zerocopy_threshold", size(d.sends.zerocopy_threshold)),
        (
            "zerocopy_fallback_after",
            d.sends.zerocopy_fallback_after.to_string(),
        ),
        ("cgi_timeout", time(CgiRoot::DEFAULT_TIMEOUT)),
        ("cgi_head_timeout", time(CgiRoot::DEFAULT_HEAD_TIMEOUT)),
        ("cgi_idle_timeout", time(CgiRoot::DEFAULT_IDLE_TIMEOUT)),
        ("cgi_kill_grace", time(CgiRoot::DEFAULT_KILL_GRACE)),
        ("cgi_max_running", CgiRoot::DEFAULT_MAX_RUNNING.to_string()),
        ("cgi_max_queued", CgiRoot::DEFAULT_MAX_QUEUED.to_string()),
        ("cgi_queue_timeout", time(CgiRoot::DEFAULT_QUEUE_TIMEOUT)),
        ("cgi_max_head_bytes", size(CgiRoot::DEFAULT_MAX_HEAD_BYTES)),
        (
            "cgi_body_spool_budget",
            size(CgiRoot::DEFAULT_BODY_SPOOL_BUDGET_BYTES),
        ),
        ("cgi_stderr", CgiRoot::default().stderr.to_string()),
    ]
}

impl Cli {
    /// `program`'s command: its name, version and description, these options (with the CGI
    /// executor's when the program has them), each with its real default in its help.
    pub(crate) fn command(program: &Program) -> clap::Command {
        let name = program.name();
        let examples = EXAMPLES
            .replace("{name}", name)
            .replace("{fastcgi}", super::DEFAULT_FASTCGI_ADDR)
            .replace("{scgi}", super::DEFAULT_SCGI_ADDR);
        let mut command = <Self as CommandFactory>::command();
        let (about, intro) = match program.about_text() {
            Some(about) => (
                about.to_owned(),
                format!(
                    "{about}\n\nServed over FastCGI and SCGI by ringgate {}: one worker thread per \
                     CPU core,\nio_uring where the kernel allows it and epoll otherwise.",
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            None => (RINGGATE_ABOUT.to_owned(), RINGGATE_INTRO.to_owned()),
        };
        let mut long_about = format!("{intro}\n\n{examples}");
        if program.has_cgi_executor() {
            command = CgiOptions::augment_args(command);
            long_about.push_str(&CGI_EXAMPLE.replace("ringgate", name));
        }
        long_about.push_str("\n\n");
        long_about.push_str(TRAILER);
        let defaults = shown_defaults(program.default_settings());
        command
            .name(name)
            .bin_name(name)
            .version(program.version())
            .about(about)
            .long_about(long_about)
            .mut_args(|arg| {
                let id = arg.get_id().as_str().to_owned();
                match defaults.iter().find(|(k, _)| *k == id) {
                    Some((_, d)) => {
                        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                        arg.help(format!("{help} [default: {d}]"))
                    }
                    None => arg,
                }
            })
    }

    /// Parses `args` (the program's name first) as `program`'s command line.
    pub(crate) fn parse_from<I, T>(program: &Program, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command(program).try_get_matches_from(args)?;
        let mut cli = Self::from_arg_matches(&matches)?;
        if program.has_cgi_executor() {
            cli.cgi = CgiOptions::from_arg_matches(&matches)?;
        }
        Ok(cli)
    }

    /// The settings: the file's (or the defaults), with these options laid over them,
    /// validated.
    pub fn settings(self) -> Result<Settings, SettingsError> {
        self.settings_over(Settings::default())
    }

    /// [`Cli::settings`] over a program's own defaults instead of [`Settings::default`].
    pub fn settings_over(self, defaults: Settings) -> Result<Settings, SettingsError> {
        let base = match &self.config {
            Some(path) => Settings::from_file_over(path, &defaults)?,
            None => defaults,
        };
        let settings = self.overlay(base);
        settings.validate()?;
        Ok(settings)
    }

    /// Lays the options that were given over `s`.
    pub fn overlay(self, mut s: Settings) -> Settings {
        fn set<T>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        let bytes = |b: Option<ByteSize>| b.map(|b| b.0);
        if !self.fastcgi.is_empty() || !self.scgi.is_empty() {
            s.listeners.fastcgi = self.fastcgi;
            s.listeners.scgi = self.scgi;
        }
        let ls = &mut s.listeners;
        set(&mut ls.socket_mode, self.socket_mode.map(Some));
        set(&mut ls.socket_owner, self.socket_owner.map(Some));
        set(&mut ls.socket_group, self.socket_group.map(Some));
        set(&mut ls.backlog, self.backlog);
        set(&mut s.workers, self.workers);
        set(&mut s.io, self.io);
        if self.no_pin {
            s.pin = false;
        } else if self.pin {
            s.pin = true;
        }
        if self.no_metrics {
            s.metrics = MetricsSetting::Off;
        }
        set(&mut s.metrics, self.metrics.map(MetricsSetting::On));
        let l = &mut s.limits;
        set(&mut l.max_params_bytes, bytes(self.max_params_bytes));
        set(&mut l.max_params_pairs, self.max_params_pairs);
        set(
            &mut l.max_scgi_header_bytes,
            bytes(self.max_scgi_header_bytes),
        );
        set(&mut l.max_headers, self.max_headers);
        set(
            &mut l.max_body_buffer_bytes,
            bytes(self.max_body_buffer_bytes),
        );
        set(
            &mut l.max_requests_per_connection,
            self.max_requests_per_connection,
        );
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.max_in_flight, self.max_in_flight);
        set(&mut l.mpxs_conns, self.mpxs_conns);
        set(
            &mut l.send_queue_high_water,
            bytes(self.send_queue_high_water),
        );
        let t = &mut s.timeouts;
        set(&mut t.params, self.params_timeout);
        set(&mut t.body_idle, self.body_idle_timeout);
        set(&mut t.handler, self.handler_timeout);
        set(&mut t.write, self.write_timeout);
        set(&mut t.keepalive_idle, self.keepalive_idle_timeout);
        set(&mut t.drain, self.drain_timeout);
        set(&mut t.drain_linger, self.drain_linger);
        set(&mut s.buffers.count, self.buffers_count);
        set(&mut s.buffers.size, bytes(self.buffers_size));
        set(&mut s.receives.buffers, self.recv_buffers);
        set(&mut s.receives.buffer_size, bytes(self.recv_buffer_size));
        set(
            &mut s.sends.zerocopy_threshold,
            bytes(self.zerocopy_threshold),
        );
        set(
            &mut s.sends.zerocopy_fallback_after,
            self.zerocopy_fallback_after,
        );
        self.cgi.overlay(&mut s);
        s
    }
}

impl CgiOptions {
    /// Lays the options that were given over `s`'s CGI roots (replacing them with `--cgi`'s).
    fn overlay(self, s: &mut Settings) {
        fn set<T>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        let bytes = |b: Option<ByteSize>| b.map(|b| b.0);
        if !self.cgi.is_empty() {
            // A relative DIR is taken from the current directory, as a shell user means it.
            s.cgi = self
                .cgi
                .into_iter()
                .map(|dir| CgiRoot::new(std::path::absolute(&dir).unwrap_or(dir)))
                .collect();
        }
        for root in &mut s.cgi {
            set(&mut root.timeout, self.cgi_timeout);
            set(&mut root.head_timeout, self.cgi_head_timeout);
            set(&mut root.idle_timeout, self.cgi_idle_timeout);
            set(&mut root.kill_grace, self.cgi_kill_grace);
            set(&mut root.max_running, self.cgi_max_running);
            set(&mut root.max_queued, self.cgi_max_queued);
            set(&mut root.queue_timeout, self.cgi_queue_timeout);
            set(&mut root.max_head_bytes, bytes(self.cgi_max_head_bytes));
            set(
                &mut root.body_spool_budget_bytes,
                bytes(self.cgi_body_spool_budget),
            );
            set(&mut root.stderr, self.cgi_stderr);
            root.env.extend(self.cgi_env.iter().cloned());
            root.allow_writable |= self.cgi_allow_writable;
        }
    }
}
