//! The CGI-script executor (`ringgate --cgi DIR`): the job fcgiwrap does, as a built-in
//! application. For each request it runs the script that `SCRIPT_FILENAME` names (or
//! `DOCUMENT_ROOT` + `SCRIPT_NAME`), confined to a configured root, and streams the request
//! body to it and its output back, both ways at once through bounded buffers.
//!
//! One job per file:
//! - [`config`]: `[[cgi]]` roots and their defaults;
//! - [`resolve`]: which file runs (beneath its root, regular, executable, not writable by
//!   others), and the `PATH_INFO` split;
//! - `env`: the script's environment, built from scratch, with only CGI/1.1 and `HTTP_*`
//!   variables taken from the request and the operator's values winning;
//! - `limit`: the running cap and queue of each root on each worker;
//! - `spawn`: the process (posix_spawn, its own process group);
//! - `process`: its supervisor (timeouts, SIGTERM/grace/SIGKILL to the group, reaping);
//! - `orphans`: what leaves a script's group (ringgate as child subreaper, a reaper thread);
//! - `pump`: stdin, stdout and stderr;
//! - `spool`: the request body held for a script, in blocks counted against the root's
//!   budget on the worker;
//! - `head`: the RFC 3875 response head (CGI and NPH).
//!
//! The response head goes to the front end only once the request body is in (spooled), with
//! up to `head_hold_bytes` of output held meanwhile: nginx stops sending a request body as
//! soon as it has a response head (measured: a `git push` through nginx stalled until the
//! body timeout), so a script that answers before reading all of its body (git-http-backend
//! does) would otherwise never get the rest.
//!
//! The request's future owns the script: dropping it (an abort, a lost connection, a
//! shutdown) ends the script's whole process group; so does dropping the response body.
//! Everything runs on the worker's own runtime (io_uring or epoll: both are tokio
//! current-thread runtimes with tokio's process driver). It never panics on what a script
//! writes and never runs anything for a request it refuses.

pub mod config;
mod env;
mod head;
mod limit;
mod orphans;
mod process;
mod pump;
pub mod resolve;
mod spawn;
mod spool;

use std::cell::RefCell;
use std::path::{Component, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Method, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::time::Instant;

pub use config::{CgiRoot, StderrTo};
pub use resolve::Refusal;

use super::{
    text, AppStatus, Body, BoxError, Handler, HandlerFactory, Peer, Protocol, RequestInfo,
    ResponseBody,
};
use crate::metrics::{CgiMetrics, CgiRefusal};
use crate::proto::cgi::CgiVars;
use crate::rate_limited_log::RateLimitedLog;
use head::HeadError;
use limit::Gate;
use process::{KillCause, ScriptHandle, Supervision};
use pump::{AbortOnDrop, BodyDone, BodyDoneNow, Output, StderrBudget};
use spawn::Identity;
use spool::SpoolBudget;

/// Why the executor cannot start with these roots.
#[derive(Debug, thiserror::Error)]
pub enum CgiSetupError {
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A root is not a directory ringgate can open.
    #[error("[[cgi]] root {path:?}: {source}")]
    Root {
        /// The root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A user or group name does not resolve.
    #[error("[[cgi]] root {path:?}: {what} {name:?}: {source}")]
    Identity {
        /// The root.
        path: PathBuf,
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A root checked at startup.
#[derive(Debug)]
struct Prepared {
    config: CgiRoot,
    /// The configured path, lexically clean.
    path: PathBuf,
    /// The same with every symbolic link resolved (front ends may name scripts either way).
    real: PathBuf,
    ids: Identity,
}

/// Makes one [`CgiExecutor`] per worker from checked roots.
#[derive(Debug, Clone)]
pub struct CgiExecutorFactory {
    roots: Arc<Vec<Prepared>>,
}

impl CgiExecutorFactory {
    /// Checks `roots` (values, directories, user and group names).
    ///
    /// Process-wide effect: the first executor makes the process a child subreaper and starts
    /// a reaper thread that ends every child of the process the executor did not start, once
    /// it has left its script's process group and its parent has ended (see `orphans`). A
    /// program that embeds the executor must not start child processes of its own.
    pub fn new(roots: Vec<CgiRoot>) -> Result<Self, CgiSetupError> {
        if roots.is_empty() {
            return Err(CgiSetupError::Invalid("no [[cgi]] root configured".into()));
        }
        let mut prepared = Vec::with_capacity(roots.len());
        for config in roots {
            config.validate().map_err(CgiSetupError::Invalid)?;
            let root_err = |source| CgiSetupError::Root {
                path: config.root.clone(),
                source,
            };
            let meta = std::fs::metadata(&config.root).map_err(root_err)?;
            if !meta.is_dir() {
                return Err(root_err(std::io::Error::other("not a directory")));
            }
            let mut path = PathBuf::from("/");
            for c in config.root.components() {
                match c {
                    Component::Normal(n) => path.push(n),
                    Component::ParentDir => {
                        return Err(CgiSetupError::Invalid(format!(
                            "[[cgi]] root {:?}: must not contain `..`",
                            config.root
                        )))
                    }
                    _ => {}
                }
            }
            let id =
                |what: &'static str, name: &Option<String>, f: fn(&str) -> std::io::Result<u32>| {
                    name.as_deref()
                        .map(|n| {
                            f(n).map_err(|source| CgiSetupError::Identity {
                                path: config.root.clone(),
                                what,
                                name: n.to_owned(),
                                source,
                            })
                        })
                        .transpose()
                };
            let ids = Identity {
                uid: id("user", &config.user, crate::rt::listener::resolve_user)?,
                gid: id("group", &config.group, crate::rt::listener::resolve_group)?,
            };
            if config.needs_pre_exec() {
                tracing::info!(
                    root = %config.root.display(),
                    "scripts of this root start with fork+exec (user, group or limits set), \
                     not posix_spawn"
                );
            }
            let real = std::fs::canonicalize(&path).map_err(root_err)?;
            prepared.push(Prepared {
                config,
                path,
                real,
                ids,
            });
        }
        orphans::start();
        Ok(Self {
            roots: Arc::new(prepared),
        })
    }

    /// The longest a request can take before its response starts: the queue wait plus the
    /// total timeout, over every root.
    pub fn longest_request(&self) -> std::time::Duration {
        self.roots
            .iter()
            .map(|r| r.config.queue_timeout + r.config.timeout)
            .max()
            .unwrap_or_default()
    }

    /// The roots, for the "ready" line.
    pub fn describe(&self) -> String {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|r| r.config.root.display().to_string())
            .collect();
        format!("CGI scripts in {}", roots.join(", "))
    }
}

impl HandlerFactory for CgiExecutorFactory {
    type Handler = CgiExecutor;

    fn make(&self, _worker: usize) -> CgiExecutor {
        let roots = (0..self.roots.len())
            .map(|i| {
                let c = &self.roots[i].config;
                RootState {
                    gate: Gate::new(c.max_running, c.max_queued, c.queue_timeout),
                    budget: Rc::new(RefCell::new(StderrBudget::new(c.stderr_lines_per_second))),
                    spool: Rc::new(SpoolBudget::new(c.body_spool_budget_bytes)),
                }
            })
            .collect();
        CgiExecutor {
            shared: self.roots.clone(),
            roots,
            metrics: Rc::new(CgiMetrics::new()),
            refusal_log: RefCell::new(RateLimitedLog::default()),
        }
    }
}

/// One root's per-worker state.
struct RootState {
    gate: Gate,
    budget: Rc<RefCell<StderrBudget>>,
    spool: Rc<SpoolBudget>,
}

/// The executor of one worker thread (a [`Handler`]).
pub struct CgiExecutor {
    shared: Arc<Vec<Prepared>>,
    roots: Vec<RootState>,
    metrics: Rc<CgiMetrics>,
    refusal_log: RefCell<RateLimitedLog>,
}

/// A plain-text answer for `status`.
fn answer(status: StatusCode) -> http::Response<ResponseBody> {
    let reason = status.canonical_reason().unwrap_or("");
    text(status, format!("{} {reason}\n", status.as_u16()))
}

impl Handler for CgiExecutor {
    fn uses_peer(&self) -> bool {
        true // For stderr to the front end, and for `stop_on_close`.
    }

    async fn call(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        let Some(info) = request.extensions().get::<RequestInfo>() else {
            return Ok(answer(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let vars = &info.vars;
        let paths: Vec<resolve::RootPath<'_>> = self
            .shared
            .iter()
            .enumerate()
            .flat_map(|(index, r)| {
                let real = (r.real != r.path).then_some(&r.real);
                std::iter::once(&r.path)
                    .chain(real)
                    .map(move |path| resolve::RootPath {
                        index,
                        path,
                        allow_writable: r.config.allow_writable,
                    })
            })
            .collect();
        let script = match resolve::resolve(vars, &paths) {
            Ok(s) => s,
            Err(refusal) => {
                self.metrics.refused(refusal.reason());
                if let Some(held) = self.refusal_log.borrow_mut().allow(StdInstant::now()) {
                    tracing::info!(
                        status = refusal.status().as_u16(),
                        suppressed = held,
                        "CGI: {refusal}"
                    );
                }
                return Ok(answer(refusal.status()));
            }
        };
        let prepared = &self.shared[script.root];
        let state = &self.roots[script.root];
        let cfg = &prepared.config;
        let who: Rc<str> = identity(vars, &script).into();
        let (permit, waited) = match state.gate.enter().await {
            Ok(p) => p,
            Err(e) => {
                self.metrics.refused(CgiRefusal::Overloaded);
                if let Some(held) = self.refusal_log.borrow_mut().allow(StdInstant::now()) {
                    tracing::warn!(script = %who, suppressed = held, "CGI: 503: {e}");
                }
                return Ok(answer(StatusCode::SERVICE_UNAVAILABLE));
            }
        };
        self.metrics.queue_wait(waited.as_secs_f64());

        let peer = request.extensions().get::<Peer>().cloned();
        let fastcgi = info.protocol == Some(Protocol::FastCgi);
        let env = env::build(vars, cfg, &script);
        if !env.dropped.is_empty() {
            self.metrics.env_dropped(env.dropped.len() as u64);
            tracing::debug!(
                script = %who,
                dropped = ?env.dropped.iter().map(|n| String::from_utf8_lossy(n)).collect::<Vec<_>>(),
                "CGI: request variables not passed to the script"
            );
        }
        let head_only = request.method() == Method::HEAD;
        let mut body = request.into_body();
        // Whether stdin is a pipe or /dev/null. CONTENT_LENGTH cannot tell: nginx sends an
        // empty one both for a GET and for a chunked upload. A body already complete (the
        // usual GET: the end of STDIN came with the params) gets /dev/null; any other a
        // pipe, which closes when the body ends.
        let first = match body.frame().now_or_never() {
            Some(None) | Some(Some(Err(_))) => None,
            Some(Some(Ok(frame))) => Some(frame.into_data().unwrap_or_default()),
            None => Some(Bytes::new()),
        };
        let has_body = first.is_some();
        let start = Instant::now();
        let deadline = start + cfg.timeout;
        let (mut child, registration) = match spawn::spawn(
            cfg,
            prepared.ids,
            &script,
            env.vars,
            has_body,
        ) {
            Ok(c) => c,
            Err(e) => {
                self.metrics.spawn_failed();
                tracing::warn!(script = %who, "CGI: cannot start {}: {e}", script.real.display());
                let status = match e.kind() {
                    std::io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return Ok(answer(status));
            }
        };
        self.metrics.spawned(start.elapsed().as_secs_f64());
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let stderr_task = stderr.map(|stderr| {
            let to_peer = match cfg.stderr {
                StderrTo::Fastcgi => peer.clone().filter(Peer::has_error_stream),
                StderrTo::Log => None,
            };
            AbortOnDrop(tokio::task::spawn_local(pump::relay_stderr(
                stderr,
                to_peer,
                who.clone(),
                state.budget.clone(),
                self.metrics.clone(),
            )))
        });
        let handle = process::supervise(
            child,
            Supervision {
                grace: cfg.kill_grace,
                deadline,
                permit,
                metrics: self.metrics.clone(),
                label: who.clone(),
                stderr: stderr_task,
                stop_on_close: peer.filter(|_| cfg.stop_on_close && fastcgi),
                registration,
            },
        );
        let body_done = Rc::new(BodyDone::default());
        let feeder = match stdin {
            Some(stdin) => Some(AbortOnDrop(tokio::task::spawn_local(pump::feed(
                first.unwrap_or_default(),
                body,
                stdin,
                pump::FeedLimits {
                    idle: cfg.idle_timeout,
                    max_spool: cfg.body_spool_bytes,
                    budget: state.spool.clone(),
                },
                handle.killer(),
                body_done.clone(),
            )))),
            None => {
                drop(BodyDoneNow(body_done.clone()));
                None
            }
        };
        let Some(stdout) = stdout else {
            return Ok(answer(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let mut out = Output::new(stdout, cfg.idle_timeout);
        let head_deadline = (start + cfg.head_timeout).min(deadline);
        let head = tokio::select! {
            h = head::read_head(&mut out, script.nph, cfg.max_head_bytes) => Some(h),
            () = tokio::time::sleep_until(head_deadline) => None,
            () = body_done.refused() => {
                return Ok(self.spool_refusal(&handle, &who));
            }
        };
        let head = match head {
            Some(Ok(head)) => head,
            None | Some(Err(HeadError::Output(pump::OutputError::Idle(_)))) => {
                handle.kill(KillCause::Timeout);
                tracing::warn!(script = %who, "CGI: 504: no response head in time");
                return Ok(answer(StatusCode::GATEWAY_TIMEOUT));
            }
            Some(Err(error)) => {
                if matches!(error, HeadError::Empty | HeadError::Truncated) {
                    // Output ended: the script is ending, maybe because it was ended (a
                    // timeout on its input, or the total timeout).
                    let wait = cfg.kill_grace + process::SWEEP_POLL;
                    if let Ok(e) = tokio::time::timeout(wait, handle.wait()).await {
                        if e.killed == Some(KillCause::Timeout) {
                            tracing::warn!(script = %who, "CGI: 504: timed out");
                            return Ok(answer(StatusCode::GATEWAY_TIMEOUT));
                        }
                    }
                }
                tracing::warn!(script = %who, "CGI: 502: {error}");
                return Ok(answer(StatusCode::BAD_GATEWAY));
            }
        };
        // Holding the head: nginx stops sending the request body once it has the response
        // head (and drops a body it buffered in a file), so the head goes out only once the
        // body is in (spooled, see `pump::feed`). Meanwhile output is read and held, up to
        // `head_hold_bytes`; the head goes out anyway when both the held output and the body
        // spool are full (waiting longer could only deadlock).
        let mut held = std::collections::VecDeque::from([head.rest]);
        let mut held_bytes = held[0].len();
        let mut eof = false;
        loop {
            if body_done.is_refused() {
                return Ok(self.spool_refusal(&handle, &who));
            }
            let stuck = held_bytes >= cfg.head_hold_bytes && body_done.is_full();
            if body_done.is_done() || stuck {
                break;
            }
            let reading = !eof && held_bytes < cfg.head_hold_bytes;
            tokio::select! {
                () = body_done.changed() => {}
                chunk = out.read_unhurried(), if reading => match chunk {
                    Ok(Some(c)) => {
                        held_bytes += c.len();
                        held.push_back(c);
                    }
                    Ok(None) => eof = true,
                    Err(error) => {
                        tracing::warn!(script = %who, "CGI: 502: {error}");
                        return Ok(answer(StatusCode::BAD_GATEWAY));
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    handle.kill(KillCause::Timeout);
                    tracing::warn!(script = %who, "CGI: 504: timed out");
                    return Ok(answer(StatusCode::GATEWAY_TIMEOUT));
                }
            }
        }
        body_done.set_head_sent();
        let app_status = AppStatus::default();
        let mut response = http::Response::new(response_body(Streaming {
            app_status: app_status.clone(),
            out,
            rest: held,
            eof,
            handle,
            _feeder: feeder,
            head_only,
            idle: cfg.idle_timeout,
            who,
        }));
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        response.extensions_mut().insert(app_status);
        Ok(response)
    }
}

impl CgiExecutor {
    /// The answer to a request whose body needed spool when its root's budget on this
    /// worker was spent: its script is ended, and it gets 503.
    fn spool_refusal(&self, handle: &ScriptHandle, who: &str) -> http::Response<ResponseBody> {
        handle.kill(KillCause::Abort);
        self.metrics.refused(CgiRefusal::SpoolBudget);
        if let Some(held) = self.refusal_log.borrow_mut().allow(StdInstant::now()) {
            tracing::warn!(
                script = %who,
                suppressed = held,
                "CGI: 503: the request body needs spool and body_spool_budget_bytes is spent"
            );
        }
        answer(StatusCode::SERVICE_UNAVAILABLE)
    }
}

/// `script METHOD URI from ADDR:PORT`, for log lines.
fn identity(vars: &CgiVars, script: &resolve::Script) -> String {
    let v = |n| vars.get_str(n).unwrap_or("-");
    format!(
        "{} {} {} from {}:{}",
        script.filename.display(),
        v("REQUEST_METHOD"),
        v("REQUEST_URI"),
        v("REMOTE_ADDR"),
        v("REMOTE_PORT")
    )
}

/// The response body's state: the script's stdout after the head.
struct Streaming {
    app_status: AppStatus,
    out: Output,
    rest: std::collections::VecDeque<Bytes>,
    eof: bool,
    handle: ScriptHandle,
    _feeder: Option<AbortOnDrop>,
    head_only: bool,
    idle: std::time::Duration,
    who: Rc<str>,
}

/// The body after the head, as the script writes it (nothing for HEAD, but the output is
/// still read to its end). Ends once stdout is closed and the script has exited (or `idle`
/// after closing); an error when the script was ended by the executor.
fn response_body(state: Streaming) -> ResponseBody {
    let stream = futures_util::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        while let Some(rest) = st.rest.pop_front() {
            if !rest.is_empty() && !st.head_only {
                return Some((Ok(Frame::data(rest)), Some(st)));
            }
        }
        loop {
            let next = if st.eof {
                Ok(None)
            } else {
                st.out.read().await
            };
            match next {
                Ok(Some(_)) if st.head_only => continue,
                Ok(Some(data)) => return Some((Ok(Frame::data(data)), Some(st))),
                Ok(None) => {
                    let ending = tokio::time::timeout(st.idle, st.handle.wait()).await.ok();
                    if let Some(e) = ending {
                        if let Some(cause) = e.killed {
                            let error: BoxError =
                                format!("script ended by the executor ({cause:?})").into();
                            tracing::warn!(script = %st.who, "CGI: {error}");
                            return Some((Err(error), None));
                        }
                        st.app_status.set(e.app_status());
                        if e.app_status() != 0 {
                            tracing::info!(script = %st.who, status = e.app_status(), "CGI: script exited with an error");
                        }
                    }
                    return None;
                }
                Err(error) => {
                    if matches!(error, pump::OutputError::Idle(_)) {
                        st.handle.kill(KillCause::Timeout);
                    }
                    tracing::warn!(script = %st.who, "CGI: {error}");
                    return Some((Err(BoxError::from(error)), None));
                }
            }
        }
    });
    Box::pin(http_body_util::StreamBody::new(stream))
}
