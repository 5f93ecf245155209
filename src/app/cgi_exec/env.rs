//! A script's environment, built from scratch (never ringgate's whole environment): the
//! variables of ringgate's own named in `pass_env` (with a fallback `PATH`), the root's `env`,
//! then the request's CGI variables, then what the executor itself decides (`SCRIPT_FILENAME`,
//! `SCRIPT_NAME`/`PATH_INFO` after the split, `GATEWAY_INTERFACE`, `SERVER_SOFTWARE`).
//! `HTTP_PROXY` (httpoxy) is never passed; `HTTP_AUTHORIZATION` and
//! `HTTP_PROXY_AUTHORIZATION` only when the root says so (RFC 3875 4.1.18); an empty
//! `CONTENT_LENGTH` (nginx's, for a request without a body) is left out (RFC 3875 4.1.2).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::config::CgiRoot;
use super::resolve::Script;
use crate::proto::cgi::CgiVars;

/// `GATEWAY_INTERFACE` when the front end sent none.
pub(super) const GATEWAY_INTERFACE: &str = "CGI/1.1";

/// The environment of one script run, in the order it is applied (a later name wins).
pub(super) fn build(vars: &CgiVars, root: &CgiRoot, script: &Script) -> Vec<(OsString, OsString)> {
    build_from(vars, root, script, |name| std::env::var_os(name))
}

/// [`build`] with ringgate's own environment given by `own`.
pub(super) fn build_from(
    vars: &CgiVars,
    root: &CgiRoot,
    script: &Script,
    own: impl Fn(&str) -> Option<OsString>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::with_capacity(vars.len() + 16);
    let set = |env: &mut Vec<(OsString, OsString)>, name: OsString, value: OsString| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
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
    // The first of a repeated request variable counts, as `CgiVars::get` reads it.
    let mut seen: Vec<&[u8]> = Vec::with_capacity(vars.len());
    for (name, value) in vars.iter() {
        if !passes(name, value, root.pass_authorization) || seen.contains(&name) {
            continue;
        }
        seen.push(name);
        set(
            &mut env,
            OsString::from_vec(name.to_vec()),
            OsString::from_vec(value.to_vec()),
        );
    }
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
    if vars.get("GATEWAY_INTERFACE").is_none() {
        set(
            &mut env,
            "GATEWAY_INTERFACE".into(),
            GATEWAY_INTERFACE.into(),
        );
    }
    if vars.get("SERVER_SOFTWARE").is_none() {
        let software = concat!("ringgate/", env!("CARGO_PKG_VERSION"));
        set(&mut env, "SERVER_SOFTWARE".into(), software.into());
    }
    env
}

/// Whether a request variable goes to the script.
fn passes(name: &[u8], value: &[u8], authorization: bool) -> bool {
    if name.is_empty() || name.contains(&b'=') || name.contains(&0) || value.contains(&0) {
        return false;
    }
    match name {
        b"HTTP_PROXY" => false,
        b"HTTP_AUTHORIZATION" | b"HTTP_PROXY_AUTHORIZATION" => authorization,
        b"CONTENT_LENGTH" => !value.is_empty(),
        _ => true,
    }
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
        let env = build_from(&vars, &root, &script("/a"), own);
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
        let env = build_from(&vars, &root, &script(""), |_| None);
        assert_eq!(get(&env, "HTTP_AUTHORIZATION"), Some("Basic x"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/cgi/x.cgi/a"));
    }
}
