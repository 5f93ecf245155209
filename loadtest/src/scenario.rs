//! Scenarios: the list of weighted [`RequestSpec`]s a run sends, from the command line
//! (one request, or a built-in `--scenario`) or from a scenario file (TOML or JSON).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum as _;
use serde::Deserialize;

use crate::cli::{Args, ScenarioName};
use crate::error::ConfigError;
use crate::request::{Behaviour, RequestSpec};
use crate::verify::Expect;

/// Default URI of `--scenario slow-reader` and `disconnect`: 1 MiB from the demo application.
pub const DEFAULT_STREAM_URI: &str = "/stream?chunks=64&size=16384";
/// Default URI of `--scenario abort`: a response that takes a second.
pub const DEFAULT_SLOW_URI: &str = "/slow?ms=1000";

/// The request specs of a run and a name for reports.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `--scenario` name, the scenario file, or `single`.
    pub name: String,
    /// Weighted requests (at least one).
    pub specs: Vec<RequestSpec>,
}

/// Builds the scenario the arguments ask for.
pub fn from_args(args: &Args) -> Result<Scenario, ConfigError> {
    if let Some(path) = &args.scenario_file {
        return from_file(path, args);
    }
    let headers = parse_headers(&args.headers)?;
    let body = match (&args.body_file, args.body_size) {
        (Some(p), _) => {
            Bytes::from(std::fs::read(p).map_err(|e| ConfigError(format!("{}: {e}", p.display())))?)
        }
        (None, Some(n)) => pattern_body(n),
        (None, None) => Bytes::new(),
    };
    let uri = |default: &str| args.uri.clone().unwrap_or_else(|| default.to_owned());
    let base = |name: &str, uri: String, behaviour: Behaviour| {
        let method = args
            .method
            .clone()
            .unwrap_or_else(|| if body.is_empty() { "GET" } else { "POST" }.to_owned());
        spec(
            name,
            1,
            method,
            uri,
            headers.clone(),
            body.clone(),
            behaviour,
            args.verify,
        )
    };
    let Some(which) = args.scenario else {
        return Ok(Scenario {
            name: "single".into(),
            specs: vec![base("request", uri("/hello"), Behaviour::Normal)],
        });
    };
    let slow = Behaviour::SlowReader { pause: args.pause };
    let abort = Behaviour::Abort {
        after: args.abort_after,
    };
    let stream_uri = format!("/stream?chunks={}&size={}", args.chunks, args.chunk_size);
    let specs = match which {
        ScenarioName::SlowReader => vec![base("slow-reader", uri(DEFAULT_STREAM_URI), slow)],
        ScenarioName::Abort => vec![base("abort", uri(DEFAULT_SLOW_URI), abort)],
        ScenarioName::HalfClose => vec![base("half-close", uri("/hello"), Behaviour::HalfClose)],
        ScenarioName::Disconnect => {
            vec![base(
                "disconnect",
                uri(DEFAULT_STREAM_URI),
                Behaviour::Disconnect,
            )]
        }
        ScenarioName::LargeResponse => {
            let mut s = base("large-response", uri(&stream_uri), Behaviour::Normal);
            s.expect = Expect::for_request(&s.method, &s.uri, &s.body, args.verify);
            vec![s]
        }
        ScenarioName::Mixed => mixed(args, &headers, &stream_uri),
    };
    let name = which
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    Ok(Scenario { name, specs })
}

/// The `mixed` scenario: mostly plain requests, some large ones, and every misbehaviour.
fn mixed(args: &Args, headers: &[(String, String)], stream_uri: &str) -> Vec<RequestSpec> {
    let v = args.verify;
    let h = || headers.to_vec();
    let get = |name: &str, w, uri: &str, b| {
        spec(name, w, "GET".into(), uri.into(), h(), Bytes::new(), b, v)
    };
    let mut echo = spec(
        "echo",
        20,
        "POST".into(),
        "/echo".into(),
        h(),
        pattern_body(1024),
        Behaviour::Normal,
        v,
    );
    echo.expect = Expect::for_request("POST", "/echo", &echo.body, v);
    let mut large = get("large-response", 10, stream_uri, Behaviour::Normal);
    large.expect = Expect::for_request("GET", stream_uri, &Bytes::new(), v);
    vec![
        get("hello", 40, "/hello", Behaviour::Normal),
        echo,
        large,
        get("status-404", 5, "/status/404", Behaviour::Normal),
        get("env", 5, "/env", Behaviour::Normal),
        get(
            "slow-reader",
            5,
            DEFAULT_STREAM_URI,
            Behaviour::SlowReader { pause: args.pause },
        ),
        get(
            "abort",
            5,
            DEFAULT_SLOW_URI,
            Behaviour::Abort {
                after: args.abort_after,
            },
        ),
        get("half-close", 5, "/hello", Behaviour::HalfClose),
        get("disconnect", 5, DEFAULT_STREAM_URI, Behaviour::Disconnect),
    ]
}

#[allow(clippy::too_many_arguments)] // reason: a plain constructor of one spec's fields
fn spec(
    name: &str,
    weight: u32,
    method: String,
    uri: String,
    mut headers: Vec<(String, String)>,
    body: Bytes,
    behaviour: Behaviour,
    verify: bool,
) -> RequestSpec {
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/octet-stream".into()));
    }
    let expect = if verify {
        Expect::for_request(&method, &uri, &body, true)
    } else {
        None
    };
    RequestSpec {
        name: name.to_owned(),
        weight,
        method,
        uri,
        headers,
        body,
        behaviour,
        expect,
    }
}

/// A body of `n` bytes repeating `a..z`.
pub fn pattern_body(n: usize) -> Bytes {
    (0..n)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Parses `Name: value` header arguments.
pub fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    raw.iter()
        .map(|h| {
            let (n, v) = h
                .split_once(':')
                .ok_or_else(|| ConfigError(format!("header {h:?} is not `Name: value`")))?;
            let n = n.trim();
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError(format!("bad header name in {h:?}")));
            }
            Ok((n.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A scenario file: `[[request]]` tables (TOML) or `{"request": [...]}` (JSON).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    request: Vec<FileRequest>,
}

/// One line of a scenario file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileRequest {
    name: Option<String>,
    #[serde(default = "one")]
    weight: u32,
    method: Option<String>,
    uri: String,
    #[serde(default)]
    headers: Vec<String>,
    body_size: Option<usize>,
    /// Relative to the scenario file's folder.
    body_file: Option<String>,
    #[serde(default)]
    behaviour: FileBehaviour,
    /// slow-reader pause (e.g. "200ms"); default --pause.
    pause: Option<String>,
    /// abort delay (e.g. "50ms"); default --abort-after.
    abort_after: Option<String>,
    /// Check /stream and /echo bodies byte by byte; default --verify.
    verify: Option<bool>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize, Debug, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum FileBehaviour {
    #[default]
    Normal,
    SlowReader,
    Abort,
    HalfClose,
    Disconnect,
}

fn from_file(path: &Path, args: &Args) -> Result<Scenario, ConfigError> {
    let err = |e: &dyn std::fmt::Display| ConfigError(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
    let file: File = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| err(&e))?
    } else {
        toml::from_str(&text).map_err(|e| err(&e))?
    };
    if file.request.is_empty() || file.request.iter().all(|r| r.weight == 0) {
        return Err(err(&"no request with a weight above 0"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let dur = |s: &Option<String>, default: Duration| match s {
        Some(s) => humantime::parse_duration(s).map_err(|e| err(&format!("{s:?}: {e}"))),
        None => Ok(default),
    };
    let mut specs = Vec::with_capacity(file.request.len());
    for (i, r) in file.request.iter().enumerate() {
        let body = match (&r.body_file, r.body_size) {
            (Some(_), Some(_)) => return Err(err(&"body_file and body_size both set")),
            (Some(f), None) => {
                Bytes::from(std::fs::read(dir.join(f)).map_err(|e| err(&format!("{f}: {e}")))?)
            }
            (None, Some(n)) => pattern_body(n),
            (None, None) => Bytes::new(),
        };
        let behaviour = match r.behaviour {
            FileBehaviour::Normal => Behaviour::Normal,
            FileBehaviour::SlowReader => Behaviour::SlowReader {
                pause: dur(&r.pause, args.pause)?,
            },
            FileBehaviour::Abort => Behaviour::Abort {
                after: dur(&r.abort_after, args.abort_after)?,
            },
            FileBehaviour::HalfClose => Behaviour::HalfClose,
            FileBehaviour::Disconnect => Behaviour::Disconnect,
        };
        let method = r
            .method
            .clone()
            .unwrap_or_else(|| if body.is_empty() { "GET" } else { "POST" }.to_owned());
        let name = r
            .name
            .clone()
            .unwrap_or_else(|| format!("request-{}", i + 1));
        let verify = r.verify.unwrap_or(args.verify);
        specs.push(spec(
            &name,
            r.weight,
            method,
            r.uri.clone(),
            parse_headers(&r.headers)?,
            body,
            behaviour,
            verify,
        ));
    }
    Ok(Scenario {
        name: path.display().to_string(),
        specs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["ringgate-load", "--target", "fastcgi://127.0.0.1:9"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    #[test]
    fn single_request_defaults() {
        let s = from_args(&args(&[])).unwrap();
        assert_eq!(s.specs.len(), 1);
        assert_eq!(s.specs[0].method, "GET");
        assert_eq!(s.specs[0].uri, "/hello");
        let s = from_args(&args(&["--body-size", "10", "-u", "/echo", "--verify"])).unwrap();
        assert_eq!(s.specs[0].method, "POST");
        assert_eq!(&s.specs[0].body[..], b"abcdefghij");
        assert!(s.specs[0].expect.is_some());
    }

    #[test]
    fn large_response_checks_length() {
        let s = from_args(&args(&["--scenario", "large-response", "--chunks", "3"])).unwrap();
        assert_eq!(s.specs[0].uri, "/stream?chunks=3&size=4096");
        assert_eq!(s.specs[0].expect.as_ref().map(Expect::len), Some(3 * 4096));
        assert_eq!(s.name, "large-response");
    }

    #[test]
    fn toml_and_json_files() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("s.toml");
        std::fs::write(
            &toml_path,
            r#"
            [[request]]
            uri = "/hello"
            weight = 3
            [[request]]
            name = "up"
            uri = "/echo"
            body_size = 5
            behaviour = "abort"
            abort_after = "10ms"
            headers = ["X-Test: 1"]
            "#,
        )
        .unwrap();
        let s = from_args(&args(&["--scenario-file", toml_path.to_str().unwrap()])).unwrap();
        assert_eq!(s.specs.len(), 2);
        assert_eq!(s.specs[0].weight, 3);
        assert_eq!(s.specs[1].method, "POST");
        assert_eq!(
            s.specs[1].behaviour,
            Behaviour::Abort {
                after: Duration::from_millis(10)
            }
        );
        let json_path = dir.path().join("s.json");
        std::fs::write(
            &json_path,
            r#"{"request":[{"uri":"/x","behaviour":"half-close"}]}"#,
        )
        .unwrap();
        let s = from_args(&args(&["--scenario-file", json_path.to_str().unwrap()])).unwrap();
        assert_eq!(s.specs[0].behaviour, Behaviour::HalfClose);
        std::fs::write(&json_path, r#"{"request":[{"uri":"/x","bogus":1}]}"#).unwrap();
        assert!(from_args(&args(&["--scenario-file", json_path.to_str().unwrap()])).is_err());
    }

    #[test]
    fn headers_must_be_name_colon_value() {
        assert!(parse_headers(&["X: y".into()]).is_ok());
        assert!(parse_headers(&["no colon".into()]).is_err());
        assert!(parse_headers(&["bad name: y".into()]).is_err());
    }
}
