//! The `ringgate` binary: a [`ringgate::Program`] that serves a built-in application: the
//! CGI-script executor when any `[[cgi]]` root (`--cgi DIR`) is configured, the demo otherwise.
//!
//! Exit status: 0 after a SIGTERM/SIGINT drain (or a valid `--check-config`), 1 for a
//! startup or worker failure, 2 for a usage error or invalid settings.

use std::process::ExitCode;

use ringgate::app::cgi_exec::CgiExecutorFactory;
use ringgate::app::demo::Demo;
use ringgate::Program;

/// mimalloc for every allocation: per-request objects are small and short-lived, and it
/// measured faster than glibc malloc on the request path (README, "Measured figures").
#[global_allocator]
static GLOBAL: ringgate::alloc::MiMalloc = ringgate::alloc::MiMalloc;

fn main() -> ExitCode {
    let program = Program::new("ringgate", env!("CARGO_PKG_VERSION")).with_cgi_executor();
    let mut settings = program.settings_or_exit();
    ringgate::init_logging();
    if settings.cgi.is_empty() {
        let server = program
            .server(settings, |_worker| Demo)
            .application("demo (/hello, /echo, /stream, /status/NNN, /slow, /env, /echo-env)");
        return program.exit_code(server.run());
    }
    let factory = match CgiExecutorFactory::new(settings.cgi.clone()) {
        Ok(factory) => factory,
        Err(error) => {
            eprintln!("ringgate: settings: {error}");
            return ExitCode::from(2);
        }
    };
    // The executor bounds each script itself (queue, head and total timeouts, answering 504)
    // and holds the head until the request body is in, which for a large upload can take
    // longer than the handler timeout: that one must not cut in first.
    let needed = factory.longest_request();
    if settings.timeouts.handler < needed {
        tracing::info!(?needed, "handler timeout raised to the CGI timeouts");
        settings.timeouts.handler = needed;
    }
    let what = factory.describe();
    program.exit_code(program.server(settings, factory).application(what).run())
}
