//! ringgate: a thread-per-core io_uring FastCGI/SCGI/CGI gateway.
//!
//! Layers (see `ARCHITECTURE.md` in the shared notes):
//! - [`proto`]: pure wire codecs (FastCGI records and name-value pairs, SCGI netstrings,
//!   CGI/1.1 variables and response heads). No I/O.
//! - [`channel`]: sans-IO connection engines (FastCGI, SCGI, CGI-on-stdio): bytes and `now`
//!   in, events and bytes out.
//! - [`app`]: the [`app::Handler`] trait, request and response bodies, built-in applications.
//! - [`rt`]: the thread-per-core servers (io_uring and the epoll fallback) that drive them.
//! - [`metrics`]: every metric name and the `/metrics` endpoint.
#![warn(missing_docs, unreachable_pub)]

pub mod app;
pub mod cgi;
pub mod channel;
pub mod config;
pub mod metrics;
pub mod proto;
mod rate_limited_log;
pub mod rt;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
