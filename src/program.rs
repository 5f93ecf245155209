//! [`Program`]: a program built on the library, as its users meet it: its name and version
//! (in `--help`, `--version`, the "ready" log line and `ringgate_build_info`), its command
//! line (the [`Cli`] options, the CGI executor's only where it serves that), its [`Server`],
//! and its exit status with startup errors printed as one line. The `ringgate` binary is one.
//!
//! It owns no setting: the options are [`Cli`]'s, the settings [`Settings`]'.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::app::HandlerFactory;
use crate::settings::{Cli, Settings, SettingsError};
use crate::{Server, ServerError};

/// A program serving one application: the `ringgate` binary, or yours.
///
/// ```no_run
/// use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};
/// use ringgate::http::{Request, Response, StatusCode};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     async fn call(&self, _: Request<Body>) -> Result<Response<ResponseBody>, BoxError> {
///         Ok(text(StatusCode::OK, "Hello, world!\n"))
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     ringgate::init_logging();
///     ringgate::Program::new("hello", env!("CARGO_PKG_VERSION"))
///         .about("Says hello over FastCGI and SCGI")
///         .serve(|_worker| Hello)
/// }
/// ```
///
/// `hello --help` then lists the options under its own name, `hello --version` prints
/// `hello 0.1.0`, `hello --check-config` checks its settings, and a startup failure prints one
/// line such as `hello: listeners: fastcgi:127.0.0.1:9000: address already in use by another
/// process (stop that process, or listen elsewhere: ...)` and exits with status 1 (2 for
/// invalid settings or a usage error).
#[derive(Clone, Debug)]
pub struct Program {
    name: &'static str,
    version: &'static str,
    about: Option<&'static str>,
    defaults: Settings,
    cgi_executor: bool,
}

impl Program {
    /// A program called `name` (as it is run) at `version`, usually
    /// `env!("CARGO_PKG_VERSION")`, with [`Settings::default`] under its file and options.
    pub fn new(name: &'static str, version: &'static str) -> Self {
        Self {
            name,
            version,
            about: None,
            defaults: Settings::default(),
            cgi_executor: false,
        }
    }

    /// What it is, in one line: the top of `--help`.
    pub fn about(mut self, about: &'static str) -> Self {
        self.about = Some(about);
        self
    }

    /// Its own defaults (e.g. metrics off), under the settings file and the options, and shown
    /// by `--help`.
    pub fn defaults(mut self, defaults: Settings) -> Self {
        self.defaults = defaults;
        self
    }

    /// Takes the CGI executor's options (`--cgi DIR`, `--cgi-*`) and `[[cgi]]` roots in the
    /// settings file, for a program that serves [`crate::app::cgi_exec`] when they are given
    /// (the `ringgate` binary). Without this, they are a usage error.
    pub fn with_cgi_executor(mut self) -> Self {
        self.cgi_executor = true;
        self
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its version.
    pub fn version(&self) -> &'static str {
        self.version
    }

    pub(crate) fn about_text(&self) -> Option<&'static str> {
        self.about
    }

    pub(crate) fn default_settings(&self) -> &Settings {
        &self.defaults
    }

    pub(crate) fn has_cgi_executor(&self) -> bool {
        self.cgi_executor
    }

    /// Its command line, as clap builds it (for `--help` text, completions, tests).
    pub fn command(&self) -> clap::Command {
        Cli::command(self)
    }

    /// The settings `args` (the program's name first) give: the file's, or the program's
    /// defaults, with the options laid over them, validated. `--help`, `--version` and a usage
    /// error come back as clap's error, which prints and exits as it should
    /// (`clap::Error::exit`); `--check-config` is only noted in the options.
    pub fn settings_from<I, T>(&self, args: I) -> Result<Settings, ProgramError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::parse_from(self, args)?;
        self.settings_of(cli).map_err(ProgramError::Settings)
    }

    /// The settings of parsed options, and a check that they ask nothing of a CGI executor
    /// the program does not have.
    fn settings_of(&self, cli: Cli) -> Result<Settings, SettingsError> {
        let settings = cli.settings_over(self.defaults.clone())?;
        if !self.cgi_executor && !settings.cgi.is_empty() {
            return Err(SettingsError::Invalid(format!(
                "[[cgi]]: {} runs no CGI scripts (the `ringgate` binary does, with --cgi DIR)",
                self.name
            )));
        }
        Ok(settings)
    }

    /// Parses the process's arguments and returns the settings they give, or exits as a
    /// command-line program should: after `--help` or `--version` with status 0; on a usage
    /// error or invalid settings with status 2, after printing why; and for `--check-config`
    /// after printing the effective settings (status 0 when they are valid).
    pub fn settings_or_exit(&self) -> Settings {
        let cli = Cli::parse_from(self, std::env::args_os()).unwrap_or_else(|e| e.exit());
        let check = cli.check_config;
        match self.settings_of(cli) {
            Ok(settings) if check => {
                print!("{}", settings.to_toml());
                if settings.listener_specs().is_empty() {
                    println!(
                        "# No listener configured: FastCGI on {} and SCGI on {}, unless systemd \
                         passes sockets.",
                        crate::settings::DEFAULT_FASTCGI_ADDR,
                        crate::settings::DEFAULT_SCGI_ADDR
                    );
                }
                eprintln!("{}: the settings are valid", self.name);
                std::process::exit(0)
            }
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("{}: settings: {e}", self.name);
                std::process::exit(2)
            }
        }
    }

    /// A [`Server`] for `factory`'s application with `settings`, named after this program.
    pub fn server<F: HandlerFactory>(&self, settings: Settings, factory: F) -> Server<F> {
        Server::new(settings, factory).named(self.name, self.version)
    }

    /// The exit status for how a server ended, after printing a failure as one line on
    /// stderr, `NAME: why (what to do)`: 0 after a clean stop, 2 for invalid settings, 1
    /// otherwise.
    pub fn exit_code(&self, result: Result<(), ServerError>) -> ExitCode {
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{}: {error}", self.name);
                match error {
                    ServerError::Settings(_) => ExitCode::from(2),
                    _ => ExitCode::FAILURE,
                }
            }
        }
    }

    /// The whole of a program's `main`: its settings from the command line
    /// ([`Program::settings_or_exit`]), a server for `factory` with them until SIGTERM or
    /// SIGINT, and the exit status ([`Program::exit_code`]).
    pub fn serve<F: HandlerFactory>(&self, factory: F) -> ExitCode {
        let settings = self.settings_or_exit();
        self.exit_code(self.server(settings, factory).run())
    }
}

/// Why [`Program::settings_from`] gave no settings.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// A usage error, or `--help` or `--version` (clap's `exit` prints it and exits).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The settings are invalid.
    #[error("settings: {0}")]
    Settings(SettingsError),
}
