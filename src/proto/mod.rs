//! Wire formats, as pure functions and incremental decoders over bytes.
//!
//! Owns FastCGI 1.0 records and name-value pairs, SCGI netstring headers, CGI/1.1
//! meta-variables (turned into a request head) and CGI response heads. Never does I/O,
//! never touches async, threads or metrics, and never panics on peer input: every decoder
//! returns a typed error instead. `#![forbid(unsafe_code)]` applies here.
#![forbid(unsafe_code)]

pub mod cgi;
pub mod fastcgi;
mod header_names;
mod name_key;
pub mod scgi;
mod vars;
