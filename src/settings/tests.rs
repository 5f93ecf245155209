//! Unit tests of the settings: TOML parsing, command-line overlay, validation, `--help`.
use std::time::Duration;

use super::*;
use crate::Program;

/// The `ringgate` binary's program (with the CGI executor's options).
fn ringgate() -> Program {
    Program::new("ringgate", "0").with_cgi_executor()
}

fn try_cli(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::parse_from(
        &ringgate(),
        std::iter::once("ringgate").chain(args.iter().copied()),
    )
}

fn cli(args: &[&str]) -> Cli {
    try_cli(args).unwrap()
}

fn parse_toml(text: &str) -> Result<Settings, toml::de::Error> {
    Settings::from_toml(text)
}

fn cfg(args: &[&str], toml: &str) -> Result<Settings, SettingsError> {
    let s = cli(args).overlay(parse_toml(toml).unwrap());
    s.validate()?;
    Ok(s)
}

const FULL: &str = r#"
    workers = 3
    io = "epoll"
    pin = false
    metrics = "127.0.0.1:9600"
    [listeners]
    fastcgi = ["127.0.0.1:9100", "unix:/tmp/f.sock"]
    scgi = ["[::1]:9101"]
    socket_mode = "0660"
    socket_owner = "root"
    socket_group = "0"
    backlog = 77
    [limits]
    max_params_bytes = "32KiB"
    max_params_pairs = 100
    max_scgi_header_bytes = 1000
    max_headers = 50
    max_body_buffer_bytes = "1MiB"
    max_requests_per_connection = 8
    max_connections = 500
    max_in_flight = 600
    mpxs_conns = false
    send_queue_high_water = 4096
    [timeouts]
    params = "1s"
    body_idle = "2s"
    handler = "3m"
    write = "500ms"
    keepalive_idle = "5s"
    drain = "6s"
    [buffers]
    count = 16
    size = "16KiB"
    [receives]
    buffers = 256
    buffer_size = "4KiB"
"#;

#[test]
fn defaults_without_file_or_options() {
    let c = cfg(&[], "").unwrap();
    assert_eq!(c, Settings::default());
    assert!(c.listener_specs().is_empty());
    assert_eq!(c.io, IoMode::Auto);
    assert!(c.pin);
    assert_eq!(c.metrics.addr(), Some("127.0.0.1:9500".parse().unwrap()));
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.timeouts, Timeouts::default());
    assert_eq!(c.buffers.count, 0);
    assert_eq!(c.listeners.backlog, DEFAULT_BACKLOG);
    assert!(c.workers >= 1);
    let d = Settings::default_listeners();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].addr.to_string(), "127.0.0.1:9000");
    assert_eq!(d[1].protocol, ListenerProtocol::Scgi);
}

#[test]
fn every_file_key_is_read() {
    let c = cfg(&[], FULL).unwrap();
    assert_eq!(c.workers, 3);
    assert_eq!(c.io, IoMode::Epoll);
    assert!(!c.pin);
    assert_eq!(c.metrics.addr(), Some("127.0.0.1:9600".parse().unwrap()));
    let specs = c.listener_specs();
    assert_eq!(specs.len(), 3);
    assert_eq!(specs[1].addr, ListenAddr::Unix("/tmp/f.sock".into()));
    assert_eq!(specs[2].protocol, ListenerProtocol::Scgi);
    assert_eq!(c.listeners.socket_mode, Some(FileMode(0o660)));
    assert_eq!(c.listeners.socket_owner.as_deref(), Some("root"));
    assert_eq!(c.listeners.backlog, 77);
    assert_eq!(
        c.limits,
        Limits {
            max_params_bytes: 32 * 1024,
            max_params_pairs: 100,
            max_scgi_header_bytes: 1000,
            max_headers: 50,
            max_body_buffer_bytes: 1 << 20,
            max_requests_per_connection: 8,
            max_connections: 500,
            max_in_flight: 600,
            mpxs_conns: false,
            send_queue_high_water: 4096,
        }
    );
    assert_eq!(c.timeouts.handler, Duration::from_secs(180));
    assert_eq!(c.timeouts.write, Duration::from_millis(500));
    assert_eq!(c.timeouts.drain, Duration::from_secs(6));
    assert_eq!(
        c.buffers,
        Buffers {
            count: 16,
            size: 16 * 1024
        }
    );
    assert_eq!(
        c.receives,
        Receives {
            buffers: 256,
            buffer_size: 4096
        }
    );
}

#[test]
fn command_line_overrides_file() {
    let c = cfg(
        &[
            "--workers",
            "5",
            "--io",
            "uring",
            "--pin",
            "--no-metrics",
            "--scgi",
            "unix:@x",
            "--max-params-bytes",
            "1KiB",
            "--mpxs-conns",
            "true",
            "--drain-timeout",
            "1m",
            "--buffers-count",
            "0",
            "--recv-buffers",
            "0",
            "--socket-mode",
            "600",
        ],
        FULL,
    )
    .unwrap();
    assert_eq!(c.workers, 5);
    assert_eq!(c.io, IoMode::Uring);
    assert!(c.pin);
    assert_eq!(c.metrics, MetricsSetting::Off);
    // Any listener on the command line replaces the file's listeners.
    let specs = c.listener_specs();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].addr, ListenAddr::UnixAbstract("x".into()));
    assert_eq!(c.limits.max_params_bytes, 1024);
    assert!(c.limits.mpxs_conns);
    assert_eq!(c.limits.max_params_pairs, 100, "file value kept");
    assert_eq!(c.timeouts.drain, Duration::from_secs(60));
    assert_eq!(c.timeouts.params, Duration::from_secs(1), "file value kept");
    assert_eq!(c.buffers.count, 0);
    assert!(!c.receives.enabled());
    assert_eq!(c.receives.buffer_size, 4096, "file value kept");
    assert_eq!(c.listeners.socket_mode, Some(FileMode(0o600)));
    let c = cfg(&["--no-pin", "--metrics", "0.0.0.0:1"], "pin = true").unwrap();
    assert!(!c.pin);
    assert_eq!(c.metrics.addr(), Some("0.0.0.0:1".parse().unwrap()));
}

#[test]
fn metrics_can_be_turned_off_in_the_file() {
    assert_eq!(
        cfg(&[], "metrics = \"off\"").unwrap().metrics,
        MetricsSetting::Off
    );
    assert_eq!(
        cfg(&[], "metrics = false").unwrap().metrics,
        MetricsSetting::Off
    );
    assert!(parse_toml("metrics = \"nowhere\"").is_err());
}

#[test]
fn bad_values_give_clear_errors() {
    let parse_err = |t: &str| parse_toml(t).unwrap_err().to_string();
    assert!(parse_err("wrkers = 2").contains("unknown field `wrkers`"));
    assert!(parse_err("io = \"iouring\"").contains("unknown variant"));
    assert!(parse_err("[listeners]\nfastcgi = [\"localhost:9000\"]").contains("host names"));
    assert!(parse_err("[timeouts]\nparams = \"10\"").contains("expected a duration"));
    assert!(parse_err("[limits]\nmax_params_bytes = \"64KB\"").contains("byte count"));
    assert!(parse_err("[listeners]\nsocket_mode = \"0999\"").contains("octal"));

    let invalid = |args: &[&str], t: &str| cfg(args, t).unwrap_err().to_string();
    assert!(invalid(&["--workers", "0"], "").contains("workers = 0"));
    assert!(invalid(&[], "[limits]\nmax_requests_per_connection = 70000").contains("16-bit"));
    assert!(invalid(&[], "[limits]\nmax_headers = 0").contains("max_headers"));
    assert!(invalid(&[], "[timeouts]\nwrite = \"0s\"").contains("write"));
    assert!(invalid(&[], "[buffers]\ncount = 5000").contains("at most 1024"));
    assert!(invalid(&[], "[receives]\nbuffers = 40000").contains("at most 32768"));
    assert!(invalid(&[], "[receives]\nbuffers = 64\nbuffer_size = 0").contains("buffer_size"));

    assert!(try_cli(&["--io", "fast"]).is_err());
    assert!(try_cli(&["--fastcgi", "nowhere"]).is_err());
    assert!(try_cli(&["--drain-timeout", "soon"]).is_err());
    assert!(try_cli(&["--metrics", "1.2.3.4:5", "--no-metrics"]).is_err());
}

#[test]
fn edges_of_ranges() {
    assert!(cfg(&[], "[limits]\nmax_requests_per_connection = 65535").is_ok());
    assert!(cfg(&[], "[limits]\nmax_requests_per_connection = 1").is_ok());
    assert!(cfg(&[], "[limits]\nmax_requests_per_connection = 0").is_err());
    assert!(cfg(&[], "[buffers]\ncount = 1024").is_ok());
    assert!(cfg(&[], "[buffers]\ncount = 1025").is_err());
    assert!(cfg(&[], "[buffers]\ncount = 1\nsize = \"1GiB\"").is_ok());
    assert!(cfg(&[], "[buffers]\ncount = 1\nsize = 1073741825").is_err());
    assert!(cfg(&[], "[receives]\nbuffers = 32768").is_ok());
    assert!(cfg(&[], "[receives]\nbuffers = 32769").is_err());
    assert!(cfg(&[], "[receives]\nbuffers = 64\nbuffer_size = \"1GiB\"").is_ok());
    assert!(cfg(&[], "[receives]\nbuffers = 64\nbuffer_size = 1073741825").is_err());
    assert!(cfg(&[], "[receives]\nbuffers = 0\nbuffer_size = 0").is_ok());
    assert_eq!("0".parse::<ByteSize>().unwrap(), ByteSize(0));
    assert!(format!("{}GiB", usize::MAX).parse::<ByteSize>().is_err());
}

#[test]
fn missing_file_is_named() {
    let mut c = cli(&[]);
    c.config = Some("/nonexistent/ringgate.toml".into());
    let e = c.settings().unwrap_err().to_string();
    assert!(e.contains("/nonexistent/ringgate.toml"), "{e}");
}

#[test]
fn help_mentions_every_file_key() {
    let help = ringgate().command().render_long_help().to_string();
    for key in [
        "[listeners] fastcgi",
        "[listeners] scgi",
        "socket_mode",
        "socket_owner",
        "socket_group",
        "backlog",
        "workers",
        "io",
        "pin",
        "metrics",
        "max_params_bytes",
        "max_params_pairs",
        "max_scgi_header_bytes",
        "max_headers",
        "max_body_buffer_bytes",
        "max_requests_per_connection",
        "max_connections",
        "max_in_flight",
        "mpxs_conns",
        "send_queue_high_water",
        "[timeouts] params",
        "body_idle",
        "handler",
        "write",
        "keepalive_idle",
        "drain",
        "[buffers] count",
        "[buffers] size",
        "[receives] buffers",
        "[receives] buffer_size",
    ] {
        assert!(help.contains(key), "--help does not mention {key}");
    }
}

#[test]
fn help_shows_the_real_defaults() {
    let help = ringgate().command().render_long_help().to_string();
    let d = Settings::default();
    for shown in [
        format!("[default: {}]", d.limits.max_params_pairs),
        format!("[default: {}]", d.limits.max_in_flight),
        "[default: 64KiB]".to_owned(),
        "[default: 10s]".to_owned(),
        "[default: 1m]".to_owned(),
        "[default: auto]".to_owned(),
    ] {
        assert!(help.contains(&shown), "--help lacks {shown}:\n{help}");
    }
    assert!(
        help.contains("Request headers"),
        "--max-headers limits request headers"
    );
}

#[test]
fn printed_settings_read_back_the_same() {
    let c = cfg(&[], FULL).unwrap();
    let printed = c.to_toml();
    assert_eq!(parse_toml(&printed).unwrap(), c, "{printed}");
    let d = Settings::default();
    assert_eq!(parse_toml(&d.to_toml()).unwrap(), d);
}

#[test]
fn byte_sizes_print_in_the_largest_exact_unit() {
    assert_eq!(ByteSize(64 * 1024).to_string(), "64KiB");
    assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
    assert_eq!(ByteSize(1000).to_string(), "1000");
    assert_eq!(ByteSize(0).to_string(), "0");
}

#[test]
fn listeners_speak_fastcgi_or_scgi_only() {
    let c = cfg(&["--fastcgi", "127.0.0.1:1", "--scgi", "unix:/tmp/s"], "").unwrap();
    let protocols: Vec<_> = c.listener_specs().iter().map(|s| s.protocol).collect();
    assert_eq!(
        protocols,
        [ListenerProtocol::FastCgi, ListenerProtocol::Scgi]
    );
    assert!(parse_toml("[listeners]\ncgi = [\"127.0.0.1:1\"]").is_err());
}

#[test]
fn a_program_of_its_own_is_named_in_its_help() {
    let hello = Program::new("hello", "1.2.3").about("Says hello");
    let help = hello.command().render_long_help().to_string();
    assert!(help.starts_with("Says hello\n"), "{help}");
    assert!(help.contains("\n  hello --config"), "{help}");
    assert!(!help.contains("\n  ringgate "), "{help}");
    assert!(
        help.contains(&format!("by ringgate {}", env!("CARGO_PKG_VERSION"))),
        "{help}"
    );
    let version = hello.command().render_version();
    assert_eq!(version.trim(), "hello 1.2.3");
}

#[test]
fn a_program_of_its_own_has_no_cgi_executor_options() {
    let hello = Program::new("hello", "1.2.3");
    let help = hello.command().render_long_help().to_string();
    assert!(!help.contains("--cgi"), "{help}");
    assert!(!help.contains("CGI scripts"), "{help}");
    fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
        std::iter::once("hello").chain(a.iter().copied()).collect()
    }
    let e = hello
        .settings_from(args(&["--cgi", "/srv/cgi-bin"]))
        .unwrap_err();
    assert!(e.to_string().contains("--cgi"), "{e}");
    assert!(hello.settings_from(args(&["--cgi-timeout", "1s"])).is_err());
    // Nor from its settings file.
    let dir = tempfile::Builder::new()
        .prefix("ringgate-settings-")
        .tempdir()
        .unwrap();
    let file = dir.path().join("hello.toml");
    std::fs::write(&file, "[[cgi]]\nroot = \"/srv/cgi-bin\"\n").unwrap();
    let file = file.to_str().unwrap();
    let e = hello
        .settings_from(args(&["--config", file]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hello runs no CGI scripts"), "{e}");
    // The ringgate binary has them, in its help too.
    let s = ringgate()
        .settings_from(["ringgate", "--cgi", "/srv/cgi-bin"])
        .unwrap();
    assert_eq!(s.cgi.len(), 1);
    assert!(ringgate()
        .settings_from(["ringgate", "--config", file])
        .is_ok());
    let help = ringgate().command().render_long_help().to_string();
    assert!(help.contains("--cgi-timeout"), "{help}");
    assert!(
        help.contains("\n  ringgate --fastcgi unix:/run/ringgate/cgi.sock --cgi"),
        "{help}"
    );
}

#[test]
fn a_program_can_have_its_own_defaults_under_file_and_options() {
    let mine = Settings {
        metrics: MetricsSetting::Off,
        limits: Limits {
            max_headers: 7,
            ..Limits::default()
        },
        ..Settings::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("ringgate-settings-")
        .tempdir()
        .unwrap();
    let file = dir.path().join("app.toml");
    std::fs::write(&file, "[limits]\nmax_in_flight = 5\n").unwrap();
    let mut c = cli(&["--workers", "3"]);
    c.config = Some(file.clone());
    let s = c.settings_over(mine.clone()).unwrap();
    assert_eq!(s.metrics, MetricsSetting::Off, "the program's default");
    assert_eq!(s.limits.max_headers, 7, "the program's default");
    assert_eq!(s.limits.max_in_flight, 5, "the file's");
    assert_eq!(s.workers, 3, "the option's");
    let s = cli(&["--metrics", "127.0.0.1:1"])
        .settings_over(mine)
        .unwrap();
    assert_eq!(s.metrics.addr(), Some("127.0.0.1:1".parse().unwrap()));
    std::fs::write(&file, "[limits]\nmax_in_flight = \"x\"\n").unwrap();
    let e = Settings::from_file_over(&file, &Settings::default()).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let quiet = Settings {
        metrics: MetricsSetting::Off,
        ..Settings::default()
    };
    let help = Program::new("app", "0")
        .defaults(quiet)
        .command()
        .render_long_help()
        .to_string();
    assert!(help.contains("[default: off]"), "{help}");
}

#[test]
fn cgi_roots_from_the_file_and_the_command_line() {
    let file = r#"
        [[cgi]]
        root = "/usr/lib/git-core"
        timeout = "10m"
        env = { GIT_PROJECT_ROOT = "/srv/git" }
        rlimit_as = "1GiB"
        [[cgi]]
        root = "/srv/cgi-bin"
    "#;
    let s = cfg(&[], file).unwrap();
    assert_eq!(s.cgi.len(), 2);
    assert_eq!(s.cgi[0].timeout, Duration::from_secs(600));
    assert_eq!(s.cgi[0].env["GIT_PROJECT_ROOT"], "/srv/git");
    assert_eq!(s.cgi[0].rlimit_as, Some(1 << 30));
    assert!(s.cgi[0].needs_pre_exec());
    assert_eq!(s.cgi[1], CgiRoot::new("/srv/cgi-bin"));
    assert!(!s.cgi[1].needs_pre_exec());
    // Printed and read back unchanged (what --check-config shows).
    assert_eq!(Settings::from_toml(&s.to_toml()).unwrap(), s);
    // The options override every root's value; --cgi replaces the file's roots.
    let s = cfg(&["--cgi-timeout", "3s", "--cgi-env", "A=b=c"], file).unwrap();
    assert!(s.cgi.iter().all(|r| r.timeout == Duration::from_secs(3)));
    assert_eq!(s.cgi[1].env["A"], "b=c");
    let s = cfg(
        &["--cgi", "/x", "--cgi", "/y", "--cgi-max-running", "2"],
        file,
    )
    .unwrap();
    assert_eq!(s.cgi.len(), 2);
    assert_eq!(s.cgi[0].root, std::path::Path::new("/x"));
    assert_eq!(s.cgi[1].max_running, 2);
    assert_eq!(s.cgi[1].timeout, CgiRoot::DEFAULT_TIMEOUT);
    // Without any root nothing is printed for them.
    assert!(!Settings::default().to_toml().contains("[[cgi]]"));
}

#[test]
fn cgi_values_are_checked_at_their_edges() {
    // A relative root is refused in the file, made absolute on the command line.
    assert!(cfg(&[], "[[cgi]]\nroot = \"relative/dir\"").is_err());
    let s = cfg(&["--cgi", "relative/dir"], "").unwrap();
    assert_eq!(
        s.cgi[0].root,
        std::env::current_dir().unwrap().join("relative/dir")
    );
    assert!(cfg(&["--cgi", "/x", "--cgi-max-running", "0"], "").is_err());
    assert!(cfg(&["--cgi", "/x", "--cgi-max-running", "1"], "").is_ok());
    assert!(cfg(&["--cgi", "/x", "--cgi-max-queued", "0"], "").is_ok());
    assert!(cfg(&["--cgi", "/x", "--cgi-timeout", "0s"], "").is_err());
    assert!(cfg(&["--cgi", "/x", "--cgi-max-head-bytes", "0"], "").is_err());
    assert!(cfg(&[], "[[cgi]]\nroot = \"/x\"\nenv = { \"A=B\" = \"1\" }").is_err());
    assert!(parse_toml("[[cgi]]\nroot = \"/x\"\nunknown = 1").is_err());
    assert!(try_cli(&["--cgi-env", "NOEQUALS"]).is_err());
}

#[test]
fn cgi_stderr_and_stop_on_close() {
    use crate::app::cgi_exec::StderrTo;
    let file = "[[cgi]]\nroot = \"/x\"\nstderr = \"fastcgi\"\nstop_on_close = false\n";
    let s = cfg(&[], file).unwrap();
    assert_eq!(s.cgi[0].stderr, StderrTo::Fastcgi);
    assert!(!s.cgi[0].stop_on_close);
    assert_eq!(Settings::from_toml(&s.to_toml()).unwrap(), s);
    let d = cfg(&["--cgi", "/x"], "").unwrap();
    assert_eq!(d.cgi[0].stderr, StderrTo::Log);
    assert!(d.cgi[0].stop_on_close);
    let s = cfg(&["--cgi-stderr", "log"], file).unwrap();
    assert_eq!(s.cgi[0].stderr, StderrTo::Log);
    assert!(parse_toml("[[cgi]]\nroot = \"/x\"\nstderr = \"syslog\"").is_err());
    assert!(try_cli(&["--cgi-stderr", "syslog"]).is_err());
}
