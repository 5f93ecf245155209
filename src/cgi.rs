//! Running a [`Handler`] as a CGI/1.1 program (twisted.web2's `startCGI`): the request comes
//! from the process environment and stdin, the response goes to stdout. The same engine and
//! driver as SCGI serve it, so limits, 1xx dropping and abort handling are identical.
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     ringgate::cgi::run(ringgate::app::demo::Demo)
//! }
//! ```

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::app::Handler;
use crate::channel::{Limits, StreamEngine, Timeouts};
use crate::metrics::{ListenerNames, SendMode, WorkerMetrics};
use crate::proto::cgi::CgiVars;
use crate::rt::driver::{self, WorkerShared, WriteHalf};
use crate::rt::io::PlainRead;

/// Longest a CGI handler may run (the web server usually has its own, shorter, limit).
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves the one request described by the environment and stdin with `handler`.
pub fn run<H: Handler>(handler: H) -> io::Result<()> {
    let vars = vars_from_env(std::env::vars_os());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(handler, vars));
    Ok(())
}

/// The CGI variables of a process environment, in its order.
pub fn vars_from_env(
    env: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> CgiVars {
    use std::os::unix::ffi::OsStringExt;
    let mut vars = CgiVars::new();
    for (name, value) in env {
        vars.push(Bytes::from(name.into_vec()), Bytes::from(value.into_vec()));
    }
    vars
}

async fn serve<H: Handler>(handler: H, vars: CgiVars) {
    let limits = Limits::default();
    let timeouts = Timeouts {
        handler: HANDLER_TIMEOUT,
        write: HANDLER_TIMEOUT,
        ..Timeouts::default()
    };
    let limits = Limits {
        max_in_flight: 1,
        ..limits
    };
    let worker = WorkerShared::new(
        handler,
        Rc::new(WorkerMetrics::disabled()),
        limits.clone(),
        timeouts.clone(),
    );
    let engine = StreamEngine::cgi(vars, limits, timeouts, Instant::now());
    let stdin = PlainRead::new(tokio::io::stdin());
    let stdout = Stdout(tokio::io::stdout());
    let listener = ListenerNames::new().add("cgi");
    driver::serve(engine, stdin, stdout, worker, listener).await;
}

/// Standard output as the write half of the "connection".
struct Stdout(tokio::io::Stdout);

impl WriteHalf for Stdout {
    async fn write_all(&mut self, data: Bytes) -> io::Result<SendMode> {
        self.0.write_all(&data).await?;
        self.0.flush().await?;
        Ok(SendMode::Epoll)
    }

    fn shutdown(&mut self) {}
}
