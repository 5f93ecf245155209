//! ringgate: a thread-per-core io_uring FastCGI/SCGI/CGI gateway, as a library.
//!
//! A web server (nginx, Apache, HAProxy, ...) speaks FastCGI or SCGI to ringgate; ringgate
//! hands each request to your application as an `http::Request` and streams the
//! `http::Response` back, one worker thread per core (io_uring where the kernel allows it,
//! epoll otherwise).
//!
//! # Serving an application
//! 1. Write a [`Handler`](app::Handler) (one instance per worker thread; it may hold
//!    `!Send` state), or use any `tower::Service` such as an axum `Router` through
//!    `app::tower` (cargo feature `tower`).
//! 2. Name your [`Program`]: it gives your binary the server's command line under your name
//!    and version, and runs a [`Server`] with a [`HandlerFactory`](app::HandlerFactory) (a
//!    closure `|worker| handler` is one) until SIGTERM/SIGINT. Or build [`Settings`] yourself
//!    (`Settings::default()`, [`Settings::from_file`]) and run a [`Server`].
//! 3. Read the [`guide`]: bodies, streaming, state, timers, logging, errors, axum, testing,
//!    nginx.
//!
//! ```no_run
//! use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};
//! use ringgate::http::{Request, Response, StatusCode};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     async fn call(&self, req: Request<Body>) -> Result<Response<ResponseBody>, BoxError> {
//!         Ok(text(StatusCode::OK, format!("you asked for {}\n", req.uri())))
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     ringgate::init_logging();
//!     ringgate::Program::new("hello", env!("CARGO_PKG_VERSION")).serve(|_worker| Hello)
//! }
//! ```
//!
//! The crates its API is made of are re-exported ([`http`], [`bytes`], [`http_body`],
//! [`http_body_util`], [`tokio`], [`tracing`]), so an application needs no other dependency.
//! The repository's `examples/` has a program like this one (`hello.rs`) and an axum
//! application served through the tower adapter (`axum.rs`)
//! (`cargo run --example hello -- --fastcgi 127.0.0.1:9000 --workers 2`).
//!
//! # Layers
//! - [`proto`]: pure wire codecs (FastCGI records and name-value pairs, SCGI netstrings,
//!   CGI/1.1 variables and response heads). No I/O.
//! - [`channel`]: sans-IO connection engines (FastCGI, SCGI, CGI-on-stdio): bytes and `now`
//!   in, events and bytes out.
//! - [`app`]: the [`Handler`](app::Handler) trait, request and response bodies, built-in
//!   applications.
//! - [`settings`]: the one settings type and the command line over it.
//! - [`server`]: the thread-per-core server that drives them (its runtime is internal).
//! - [`program`]: a program built on the library: its name, version, command line and exit.
//! - [`cgi`]: the same handler run as a CGI/1.1 program.
//! - [`metrics`]: every metric name and the `/metrics` endpoint.
//! - [`alloc`]: the global allocator the binary installs (mimalloc).
#![warn(missing_docs, unreachable_pub)]

pub mod alloc;
pub mod app;
pub mod cgi;
pub mod channel;
pub mod metrics;
pub mod proto;
mod rate_limited_log;
// The runtime is internal: its items are `pub` for its own modules and for `server`. The fuzz
// targets (built with `--cfg fuzzing`) reach its in-memory driver harness, `rt::sim`.
pub mod program;
#[cfg(not(fuzzing))]
#[allow(unreachable_pub)]
pub(crate) mod rt;
#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs, unreachable_pub)]
pub mod rt;
pub mod server;
pub mod settings;
mod sys;

pub use program::Program;
pub use server::{init_logging, Server, ServerError};
pub use settings::{Cli, Settings};

// The crates ringgate's API is made of, at the versions ringgate uses, so that an application
// needs no dependency of its own for them (and can never get a second, mismatched copy).
/// `bytes`: the [`Bytes`](bytes::Bytes) of request and response bodies (re-exported).
pub use bytes;
/// `http`: `Request`, `Response`, `StatusCode`, `header`, ... (re-exported).
pub use http;
/// `http-body` 1.x: the [`Body`](http_body::Body) trait and [`Frame`](http_body::Frame) of
/// streaming bodies (re-exported).
pub use http_body;
/// `http-body-util`: ready-made bodies, such as `Full`, `StreamBody` and the `channel` body a
/// task can feed (re-exported).
pub use http_body_util;
/// `tokio`: the runtime every worker runs handlers on (both I/O backends): its timers
/// (`tokio::time`), channels (`tokio::sync`) and `task::spawn_local` (re-exported).
pub use tokio;
/// `tower-service`: the `Service` trait [`app::tower`] serves (re-exported; feature `tower`).
#[cfg(feature = "tower")]
pub use tower_service;
/// `tracing`: the logging [`init_logging`] sets up and ringgate logs with (re-exported).
pub use tracing;

/// The application guide (`docs/application-guide.md`): reading and streaming bodies, state
/// per worker or shared, timers, logging, errors, axum and its CGI variables, testing without
/// a socket, deploying behind nginx. Every snippet in it is compiled as a doctest.
#[doc = include_str!("../docs/application-guide.md")]
pub mod guide {}

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
