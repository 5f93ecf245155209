//! The `ringgate` binary: the command line and settings file, logging, and the built-in
//! application, served by [`ringgate::Server`].
//!
//! Exit status: 0 after a SIGTERM/SIGINT drain (or a valid `--check-config`), 1 for a
//! startup or worker failure, 2 for a usage error or invalid settings.

use std::process::ExitCode;

use ringgate::app::demo::Demo;
use ringgate::{Cli, Server};

/// mimalloc for every allocation: per-request objects are small and short-lived, and it
/// measured faster than glibc malloc on the request path (README, "Measured figures").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let settings = Cli::settings_or_exit("ringgate", env!("CARGO_PKG_VERSION"));
    ringgate::init_logging();
    let server = Server::new(settings, |_worker| Demo)
        .application("demo (/hello, /echo, /stream, /status/NNN, /slow, /env, /echo-env)");
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
