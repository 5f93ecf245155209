//! A script's environment, built from scratch (never ringgate's whole environment), in this
//! order, a later name winning:
//! 1. the request's variables that are on the allow-list below (the first of a repeated one);
//! 2. the operator's: the variables of ringgate's own environment named in `pass_env` (with a
//!    fallback `PATH`), then the root's `env`; so a request can never change a value the
//!    operator set (`GIT_PROJECT_ROOT`, `PATH`, ...);
//! 3. what the executor itself decides: `SCRIPT_FILENAME`, `SCRIPT_NAME`/`PATH_INFO` after the
//!    split, and `GATEWAY_INTERFACE`/`SERVER_SOFTWARE` when nobody set them.
//!
//! The front end (any peer that can connect to the listener) is not trusted with the rest of
//! the environment: a variable such as `PATH`, `LD_PRELOAD`, `BASH_ENV`, `ENV`, `PERL5OPT`,
//! `PYTHONPATH`, `GIT_CONFIG_PARAMETERS`, `GIT_PROJECT_ROOT` or `SSL_CERT_FILE` changes what
//! the script's process runs, so only these may come from a request ([`ALLOWED`]):
//! - the CGI/1.1 meta-variables of RFC 3875 4.1: `AUTH_TYPE`, `CONTENT_LENGTH`,
//!   `CONTENT_TYPE`, `GATEWAY_INTERFACE`, `PATH_INFO`, `PATH_TRANSLATED`, `QUERY_STRING`,
//!   `REMOTE_ADDR`, `REMOTE_HOST`, `REMOTE_IDENT`, `REMOTE_USER`, `REQUEST_METHOD`,
//!   `SCRIPT_NAME`, `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL`, `SERVER_SOFTWARE`;
//! - the extras nginx's `fastcgi_params`, Apache's `mod_proxy_fcgi` and lighttpd pass and
//!   scripts read: `REQUEST_URI`, `DOCUMENT_URI`, `DOCUMENT_ROOT`, `REQUEST_SCHEME`, `HTTPS`,
//!   `REMOTE_PORT`, `SERVER_ADDR`, `REDIRECT_STATUS` (PHP's check), `CONTEXT_PREFIX`,
//!   `CONTEXT_DOCUMENT_ROOT`; `SCRIPT_FILENAME` is always the executor's own;
//! - `HTTP_*` (the request's header fields), named in `[A-Z0-9_]` as front ends write them,
//!   except `HTTP_PROXY` (httpoxy), never passed, and `HTTP_AUTHORIZATION` and
//!   `HTTP_PROXY_AUTHORIZATION`, passed only when the root says so (RFC 3875 4.1.18).
//!   (git-http-backend reads `HTTP_GIT_PROTOCOL` and `HTTP_CONTENT_ENCODING` this way.)
//!
//! Everything else a request sends is dropped, counted in `ringgate_cgi_env_dropped_total`
//! and named in a debug log line. `GIT_PROJECT_ROOT` and `GIT_HTTP_EXPORT_ALL` (what
//! git-http-backend serves) therefore come from the operator only. An empty `CONTENT_LENGTH`
//! (nginx's, for a request without a body) is left out (RFC 3875 4.1.2).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::config::CgiRoot;
use super::resolve::Script;
use crate::proto::cgi::CgiVars;

/// `GATEWAY_INTERFACE` when the front end sent none.
pub(super) const GATEWAY_INTERFACE: &str = "CGI/1.1";

/// The request variables a script may get (besides `HTTP_*`): see the module docs.
pub(super) const ALLOWED: &[&str] = &[
    // RFC 3875 4.1.
    "AUTH_TYPE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_IDENT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    // What front ends add and scripts read.
    "REQUEST_URI",
    "DOCUMENT_URI",
    "DOCUMENT_ROOT",
    "REQUEST_SCHEME",
    "HTTPS",
    "REMOTE_PORT",
    "SERVER_ADDR",
    "REDIRECT_STATUS",
    "CONTEXT_PREFIX",
    "CONTEXT_DOCUMENT_ROOT",
];

/// A script's environment, and what the request sent that it leaves out.
#[derive(Debug, Default)]
pub(super) struct Environment {
    /// Names and values, in the order they were set.
    pub(super) vars: Vec<(OsString, OsString)>,
    /// Request variables dropped (not on the allow-list, or never passed).
    pub(super) dropped: Vec<Vec<u8>>,
}

/// The environment of one script run, in the order it is applied (a later name wins).
pub(super) fn build(vars: &CgiVars, root: &CgiRoot, script: &Script) -> Environment {
    build_from(vars, root, script, |name| std::env::var_os(name))
}

/// [`build`] with ringgate's own environment given by `own`.
pub(super) fn build_from(
    vars: &CgiVars,
    root: &CgiRoot,
    script: &Script,
    own: impl Fn(&str) -> Option<OsString>,
) -> Environment {
    let mut env: Vec<(OsString, OsString)> = Vec::with_capacity(vars.len() + 16);
    let mut dropped = Vec::new();
    let set = |env: &mut Vec<(OsString, OsString)>, name: OsString, value: OsString| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    // 1. The request's (the first of a repeated variable counts, as `CgiVars::get` reads it).
    let mut seen: Vec<&[u8]> = Vec::with_capacity(vars.len());
    for (name, value) in vars.iter() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        match passes(name, value, root.pass_authorization) {
            Verdict::Pass => set(
                &mut env,
                OsString::from_vec(name.to_vec()),
                OsString::from_vec(value.to_vec()),
            ),
            Verdict::Omit => {}
            Verdict::Drop => dropped.push(name.to_vec()),
        }
    }
    // 2. The operator's, over the request's.
    for name in &root.pass_env {
        if let Some(v) = own(name) {
            set(&mut env, name.into(), v);
        }
    }
    if !env.iter().any(|(n, _)| n == "PATH") {
        set(&mut env, "PATH".into(), CgiRoot::FALLBACK_PATH.into());
    }
    for (n, v) in &root.env {
        set(&mut env, n.into(), v.into());
    }
    // 3. The executor's.
    set(
        &mut env,
        "SCRIPT_FILENAME".into(),
        script.filename.clone().into_os_string(),
    );
    if !script.extra_path_info.is_empty() {
        let extra = script.extra_path_info.as_bytes();
        let name = vars.get("SCRIPT_NAME").unwrap_or_default();
        if let Some(short) = name.strip_suffix(extra) {
            set(
                &mut env,
                "SCRIPT_NAME".into(),
                OsString::from_vec(short.to_vec()),
            );
        }
        let mut info = extra.to_vec();
        info.extend_from_slice(vars.get("PATH_INFO").unwrap_or_default());
        set(&mut env, "PATH_INFO".into(), OsString::from_vec(info));
    }
    if !env.iter().any(|(n, _)| n == "GATEWAY_INTERFACE") {
        set(
            &mut env,
            "GATEWAY_INTERFACE".into(),
            GATEWAY_INTERFACE.into(),
        );
    }
    if !env.iter().any(|(n, _)| n == "SERVER_SOFTWARE") {
        let software = concat!("ringgate/", env!("CARGO_PKG_VERSION"));
        set(&mut env, "SERVER_SOFTWARE".into(), software.into());
    }
    Environment { vars: env, dropped }
}

/// What becomes of one request variable.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// It goes to the script.
    Pass,
    /// Left out by rule, not counted (an empty `CONTENT_LENGTH`, authorization by default,
    /// `SCRIPT_FILENAME`, which the executor sets itself).
    Omit,
    /// Not allowed from a request: dropped and counted.
    Drop,
}

/// Whether a request variable goes to the script.
fn passes(name: &[u8], value: &[u8], authorization: bool) -> Verdict {
    if name.is_empty() || name.contains(&b'=') || name.contains(&0) || value.contains(&0) {
        return Verdict::Drop;
    }
    match name {
        b"HTTP_PROXY" => Verdict::Drop,
        b"HTTP_AUTHORIZATION" | b"HTTP_PROXY_AUTHORIZATION" if !authorization => Verdict::Omit,
        b"CONTENT_LENGTH" if value.is_empty() => Verdict::Omit,
        // How the front end names the script; the executor sets its own (resolved) value.
        b"SCRIPT_FILENAME" => Verdict::Omit,
        _ if is_header_variable(name) || ALLOWED.iter().any(|a| a.as_bytes() == name) => {
            Verdict::Pass
        }
        _ => Verdict::Drop,
    }
}

/// `HTTP_` followed by at least one of `[A-Z0-9_]` (a header field as front ends name it).
fn is_header_variable(name: &[u8]) -> bool {
    name.strip_prefix(b"HTTP_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .iter()
                .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::path::PathBuf;

    fn script(extra: &str) -> Script {
        Script {
            root: 0,
            filename: PathBuf::from("/srv/cgi/x.cgi"),
            real: PathBuf::from("/srv/cgi/x.cgi"),
            dir: PathBuf::from("/srv/cgi"),
            extra_path_info: extra.into(),
            nph: false,
        }
    }

    fn get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn allowlist_request_vars_and_overrides() {
        let mut vars = CgiVars::new();
        for (n, v) in [
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://evil"),
            ("HTTP_AUTHORIZATION", "Basic x"),
            ("CONTENT_LENGTH", ""),
            ("SCRIPT_NAME", "/cgi/x.cgi/a"),
            ("PATH_INFO", ""),
            ("BAD=NAME", "v"),
            ("HTTP_HOST", "h"),
            ("HTTP_HOST", "second"),
        ] {
            vars.push(Bytes::from(n), Bytes::from(v));
        }
        let mut root = CgiRoot::new("/srv/cgi");
        root.env
            .insert("GIT_PROJECT_ROOT".into(), "/srv/git".into());
        let own = |n: &str| match n {
            "LANG" => Some(OsString::from("C.UTF-8")),
            "SECRET" => Some(OsString::from("x")),
            _ => None,
        };
        let built = build_from(&vars, &root, &script("/a"), own);
        assert_eq!(
            built.dropped,
            [b"HTTP_PROXY".to_vec(), b"BAD=NAME".to_vec()]
        );
        let env = built.vars;
        assert_eq!(get(&env, "PATH"), Some(CgiRoot::FALLBACK_PATH));
        assert_eq!(get(&env, "LANG"), Some("C.UTF-8"));
        assert_eq!(get(&env, "SECRET"), None);
        assert_eq!(get(&env, "HTTP_PROXY"), None);
        assert_eq!(get(&env, "HTTP_AUTHORIZATION"), None);
        assert_eq!(get(&env, "CONTENT_LENGTH"), None);
        assert_eq!(get(&env, "BAD=NAME"), None);
        assert_eq!(get(&env, "HTTP_HOST"), Some("h"));
        assert_eq!(get(&env, "GIT_PROJECT_ROOT"), Some("/srv/git"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/cgi/x.cgi"));
        assert_eq!(get(&env, "PATH_INFO"), Some("/a"));
        assert_eq!(get(&env, "SCRIPT_FILENAME"), Some("/srv/cgi/x.cgi"));
        assert_eq!(get(&env, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
        root.pass_authorization = true;
        let env = build_from(&vars, &root, &script(""), |_| None).vars;
        assert_eq!(get(&env, "HTTP_AUTHORIZATION"), Some("Basic x"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/cgi/x.cgi/a"));
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use bytes::Bytes;
    use std::path::PathBuf;

    #[test]
    fn only_cgi_and_header_variables_come_from_a_request_and_the_operator_wins() {
        let mut vars = CgiVars::new();
        for (n, v) in [
            ("PATH", "/tmp/evil"),
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("BASH_ENV", "/tmp/x"),
            ("GIT_CONFIG_PARAMETERS", "'core.pager'='x'"),
            ("GIT_PROJECT_ROOT", "/"),
            ("GIT_HTTP_EXPORT_ALL", "1"),
            ("SCRIPT_FILENAME", "/bin/sh"),
            ("http_proxy", "http://evil"),
            ("HTTP_", "empty"),
            ("HTTP_x-lower", "no"),
            ("REMOTE_USER", "peer"),
            ("QUERY_STRING", "a=1"),
            ("HTTP_GIT_PROTOCOL", "version=2"),
            ("HTTPS", "on"),
        ] {
            vars.push(Bytes::from(n), Bytes::from(v));
        }
        let mut root = CgiRoot::new("/srv/cgi");
        root.env
            .insert("GIT_PROJECT_ROOT".into(), "/srv/git".into());
        root.env.insert("REMOTE_USER".into(), "op".into());
        let script = Script {
            root: 0,
            filename: PathBuf::from("/srv/cgi/x.cgi"),
            real: PathBuf::from("/srv/cgi/x.cgi"),
            dir: PathBuf::from("/srv/cgi"),
            extra_path_info: String::new(),
            nph: false,
        };
        let built = build_from(&vars, &root, &script, |n| {
            (n == "PATH").then(|| OsString::from("/usr/bin"))
        });
        let get = |name: &str| {
            built
                .vars
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(get("PATH"), Some("/usr/bin"));
        assert_eq!(get("GIT_PROJECT_ROOT"), Some("/srv/git"));
        assert_eq!(get("REMOTE_USER"), Some("op"));
        assert_eq!(get("SCRIPT_FILENAME"), Some("/srv/cgi/x.cgi"));
        assert_eq!(get("QUERY_STRING"), Some("a=1"));
        assert_eq!(get("HTTP_GIT_PROTOCOL"), Some("version=2"));
        assert_eq!(get("HTTPS"), Some("on"));
        for name in [
            "LD_PRELOAD",
            "BASH_ENV",
            "GIT_CONFIG_PARAMETERS",
            "GIT_HTTP_EXPORT_ALL",
        ] {
            assert_eq!(get(name), None, "{name}");
        }
        let dropped: Vec<&str> = built
            .dropped
            .iter()
            .map(|n| std::str::from_utf8(n).unwrap())
            .collect();
        assert_eq!(
            dropped,
            [
                "PATH",
                "LD_PRELOAD",
                "BASH_ENV",
                "GIT_CONFIG_PARAMETERS",
                "GIT_PROJECT_ROOT",
                "GIT_HTTP_EXPORT_ALL",
                "http_proxy",
                "HTTP_",
                "HTTP_x-lower"
            ]
        );
    }
}
