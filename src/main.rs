//! The `ringgate` binary: the command line and settings file, logging, and the built-in
//! application, served by [`ringgate::Server`]: the CGI-script executor when any `[[cgi]]`
//! root (`--cgi DIR`) is configured, the demo otherwise.
//!
//! Exit status: 0 after a SIGTERM/SIGINT drain (or a valid `--check-config`), 1 for a
//! startup or worker failure, 2 for a usage error or invalid settings.

use std::process::ExitCode;

use ringgate::app::cgi_exec::CgiExecutorFactory;
use ringgate::app::demo::Demo;
use ringgate::{Cli, Server, ServerError};

/// mimalloc for every allocation: per-request objects are small and short-lived, and it
/// measured faster than glibc malloc on the request path (README, "Measured figures").
#[global_allocator]
static GLOBAL: ringgate::alloc::MiMalloc = ringgate::alloc::MiMalloc;

fn main() -> ExitCode {
    let settings = Cli::settings_or_exit("ringgate", env!("CARGO_PKG_VERSION"));
    ringgate::init_logging();
    let served = if settings.cgi.is_empty() {
        Server::new(settings, |_worker| Demo)
            .application("demo (/hello, /echo, /stream, /status/NNN, /slow, /env, /echo-env)")
            .run()
    } else {
        match CgiExecutorFactory::new(settings.cgi.clone()) {
            Ok(factory) => {
                let mut settings = settings;
                // The executor bounds each script itself (queue, head and total timeouts,
                // answering 504) and holds the head until the request body is in, which
                // for a large upload can take longer than the handler timeout: that one
                // must not cut in first.
                let needed = factory.longest_request();
                if settings.timeouts.handler < needed {
                    tracing::info!(?needed, "handler timeout raised to the CGI timeouts");
                    settings.timeouts.handler = needed;
                }
                let what = factory.describe();
                Server::new(settings, factory).application(what).run()
            }
            Err(error) => {
                eprintln!("ringgate: settings: {error}");
                return ExitCode::from(2);
            }
        }
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ ServerError::Settings(_)) => {
            tracing::error!("{error}");
            ExitCode::from(2)
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
