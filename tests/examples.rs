//! The examples as programs: `examples/axum.rs` (an axum `Router` through the tower
//! adapter) answers the demo's routes the way the built-in demo does, plus its JSON route,
//! over FastCGI (TCP and Unix, multiplexed), SCGI and nginx; `examples/hello.rs` answers
//! any URI. Both are `ringgate::Program`s: their own name and version in `--help`,
//! `--version`, the log and `ringgate_build_info`, the options that apply to them (not the
//! CGI executor's), and startup errors as one line, as the `ringgate` binary's.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::frontend::{curl, have, start_nginx};
use support::program::example;
use support::*;

fn axum(io: &str) -> Server {
    Server::start_program(&example("axum"), io, &[])
}

/// The routes both the demo and the axum example serve, with the answers they must give.
fn demo_routes<S: std::io::Read + std::io::Write>(c: &mut FcgiConn<S>) {
    let hello = c.call(1, true, "GET", "/hello", b"");
    assert_eq!(hello.http(), (200, b"Hello, world!\n".to_vec()));
    let head = String::from_utf8_lossy(&hello.stdout).to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("content-length: 14"), "{head}");
    assert!(hello.complete());

    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.call(2, true, "POST", "/echo", &body).http(), (200, body));
    assert_eq!(
        c.call(3, true, "GET", "/stream?chunks=3&size=5", b"")
            .http(),
        (200, expected_stream(3, 5))
    );
    assert_eq!(
        c.call(4, true, "GET", "/stream?chunks=40&size=70000", b"")
            .http(),
        (200, expected_stream(40, 70000))
    );
    assert_eq!(
        c.call(5, true, "GET", "/stream?chunks=2000&size=1048576", b"")
            .http(),
        (400, b"stream too large\n".to_vec())
    );
    assert_eq!(
        c.call(6, true, "GET", "/status/418", b"").http(),
        (418, b"418 I'm a teapot\n".to_vec())
    );
    assert_eq!(
        c.call(7, true, "POST", "/status/201", b"").http(),
        (201, b"201 Created\n".to_vec())
    );
    assert_eq!(c.call(8, true, "GET", "/status/99", b"").http().0, 400);
    assert_eq!(c.call(9, true, "GET", "/status/abc", b"").http().0, 400);
    assert_eq!(
        c.call(10, true, "GET", "/slow?ms=30", b"").http(),
        (200, b"slept 30 ms\n".to_vec())
    );
    assert_eq!(
        c.call(11, true, "DELETE", "/hello", b"").http(),
        (405, b"method not allowed\n".to_vec())
    );
    assert_eq!(c.call(12, true, "GET", "/echo", b"").http().0, 405);
    // HEAD is answered like GET where the demo allows it, body included (front ends drop it).
    assert_eq!(
        c.call(14, true, "HEAD", "/hello", b"").http(),
        (200, b"Hello, world!\n".to_vec())
    );
    assert_eq!(c.call(15, true, "HEAD", "/stream", b"").http().0, 405);
    assert_eq!(
        c.call(16, true, "HEAD", "/status/404", b"").http(),
        (404, b"404 Not Found\n".to_vec())
    );
    assert_eq!(
        c.call(13, true, "GET", "/nowhere", b"").http(),
        (404, b"not found\n".to_vec())
    );
}

fn axum_serves_the_demo_routes(io: &str) {
    let server = axum(io);
    let mut c = server.fcgi();
    demo_routes(&mut c);
    demo_routes(&mut server.fcgi_unix());

    let user = c.call(20, true, "GET", "/users/42", b"");
    assert_eq!(user.http(), (200, br#"{"id":42}"#.to_vec()));
    let head = String::from_utf8_lossy(&user.stdout).to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(c.call(21, true, "GET", "/users/x", b"").http().0, 400);

    // Multiplexed: a slow request does not hold back the quick ones behind it.
    let mut all = fcgi_request(30, true, "GET", "/slow?ms=300", b"");
    all.extend_from_slice(&fcgi_request(31, true, "GET", "/hello", b""));
    all.extend_from_slice(&fcgi_request(32, true, "POST", "/echo", b"abc"));
    c.send(&all);
    let r = c.responses(&[30, 31, 32]);
    assert_eq!(r[&31].http().0, 200);
    assert_eq!(r[&32].http(), (200, b"abc".to_vec()));
    assert_eq!(r[&30].http(), (200, b"slept 300 ms\n".to_vec()));

    // SCGI, over TCP.
    let scgi = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    assert_eq!(
        scgi_call(scgi, "GET", "/users/7", b"", no_half_close),
        (200, br#"{"id":7}"#.to_vec())
    );
}

#[test]
fn axum_serves_the_demo_routes_on_epoll() {
    axum_serves_the_demo_routes("epoll");
}

#[test]
fn axum_serves_the_demo_routes_on_uring() {
    axum_serves_the_demo_routes("auto");
}

#[test]
fn axum_slow_request_is_cancelled_on_abort() {
    let server = axum("auto");
    let mut c = server.fcgi();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    c.send(&fcgi_request(1, true, "GET", "/slow?ms=60000", b""));
    std::thread::sleep(Duration::from_millis(100));
    c.abort(1);
    let r = c.responses(&[1]);
    assert!(r[&1].end.is_some(), "the aborted request is ended");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ended at once, not after the handler's sleep"
    );
    server.wait_metric("ringgate_aborts_total{cause=\"peer_abort\"}", |v| v >= 1.0);
    server.wait_metric("ringgate_requests_in_flight", |v| v == 0.0);
    // The connection goes on serving.
    assert_eq!(c.call(2, true, "GET", "/hello", b"").http().0, 200);
}

#[test]
fn axum_echo_streams_a_body_larger_than_the_buffers() {
    // 8 MiB through a 256 KiB body buffer and a one-chunk channel: both directions are
    // bounded, so this completes only if the body streams (the client writes from one thread
    // and reads from another, as a front end does).
    let server = axum("auto");
    let mut c = server.fcgi();
    let body: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    let request = fcgi_request(1, true, "PUT", "/echo", &body);
    let mut writer = c.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&request).unwrap();
    });
    let r = c.responses(&[1]);
    sending.join().unwrap();
    assert_eq!(r[&1].http(), (200, body));
}

#[test]
fn hello_answers_any_uri() {
    let server = Server::start_program(&example("hello"), "auto", &[]);
    let mut c = server.fcgi();
    let r = c.call(1, true, "GET", "/any/where?x=1", b"");
    assert_eq!(r.http(), (200, b"you asked for /any/where?x=1\n".to_vec()));
    // Its body is `app::full`: the Content-Length comes from its size.
    let head = String::from_utf8_lossy(&r.stdout).to_ascii_lowercase();
    assert!(head.contains("\r\ncontent-length: 29\r\n"), "{head}");
    assert_eq!(
        c.call(2, true, "POST", "/", b"body").http(),
        (200, b"you asked for /\n".to_vec())
    );
    let scgi = TcpStream::connect(("127.0.0.1", server.scgi)).unwrap();
    assert_eq!(
        scgi_call(scgi, "GET", "/s", b"", no_half_close),
        (200, b"you asked for /s\n".to_vec())
    );
}

#[test]
fn examples_answer_version_as_themselves() {
    for name in ["hello", "axum"] {
        let out = std::process::Command::new(example(name))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        let version = String::from_utf8(out.stdout).unwrap();
        assert!(version.starts_with(&format!("{name} ")), "{version}");
    }
}

#[test]
fn examples_behind_nginx() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let server = axum("auto");
    let front = start_nginx(&server);
    assert_eq!(
        curl(front.http, "/hello", &[]),
        (200, b"Hello, world!\n".to_vec())
    );
    assert_eq!(
        curl(front.http, "/users/5", &[]),
        (200, br#"{"id":5}"#.to_vec())
    );
    assert_eq!(
        curl(front.http, "/echo", &["--data-binary", "streamed"]),
        (200, b"streamed".to_vec())
    );
    assert_eq!(
        curl(front.http, "/stream?chunks=4&size=100000", &[]),
        (200, expected_stream(4, 100000))
    );
    assert_eq!(curl(front.http, "/status/503", &[]).0, 503);
    drop(front);

    let server = Server::start_program(&example("hello"), "auto", &[]);
    let front = start_nginx(&server);
    assert_eq!(
        curl(front.http, "/x?y=z", &[]),
        (200, b"you asked for /x?y=z\n".to_vec())
    );
    // A Content-Length from the body's exact size (`app::full`): nginx passes the length on
    // instead of re-chunking the response.
    let (status, with_head) = curl(front.http, "/x?y=z", &["-i"]);
    assert_eq!(status, 200);
    let head = String::from_utf8_lossy(&with_head).to_ascii_lowercase();
    assert!(head.contains("\r\ncontent-length: 21\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
}

#[test]
fn axum_and_the_builtin_demo_answer_alike() {
    let demo = Server::start("auto", &[]);
    let axum = axum("auto");
    let (mut d, mut a) = (demo.fcgi(), axum.fcgi());
    demo_routes(&mut d);
    let cases: &[(&str, &str, &[u8])] = &[
        ("GET", "/hello", b""),
        ("HEAD", "/hello", b""),
        ("POST", "/hello", b"x"),
        ("OPTIONS", "/hello", b""),
        ("GET", "/hello/", b""),
        ("GET", "/hello?x=1", b""),
        ("POST", "/echo", b"some body"),
        ("PUT", "/echo", b""),
        ("GET", "/echo", b""),
        ("HEAD", "/echo", b""),
        ("GET", "/stream", b""),
        ("GET", "/stream?chunks=0", b""),
        ("GET", "/stream?chunks=2&size=x", b""),
        ("GET", "/stream?chunks=3&size=17000000", b""),
        ("POST", "/stream", b""),
        ("GET", "/status/200", b""),
        ("DELETE", "/status/451", b""),
        ("GET", "/status/", b""),
        ("GET", "/status/1000", b""),
        ("GET", "/status/100", b""),
        ("GET", "/status/204/x", b""),
        ("GET", "/status", b""),
        ("GET", "/slow", b""),
        ("GET", "/slow?ms=5", b""),
        ("POST", "/slow", b""),
        ("GET", "/", b""),
        ("GET", "/nope%20x", b""),
    ];
    for (i, (method, uri, body)) in cases.iter().enumerate() {
        let id = 100 + i as u16;
        let want = d.call(id, true, method, uri, body);
        let got = a.call(id, true, method, uri, body);
        assert_eq!(got.http(), want.http(), "{method} {uri}");
        let header = |r: &FcgiResponse, name: &str| {
            String::from_utf8_lossy(&r.stdout)
                .to_ascii_lowercase()
                .lines()
                .take_while(|l| !l.is_empty())
                .find(|l| l.starts_with(name))
                .map(str::to_owned)
        };
        for name in ["content-type:", "content-length:"] {
            assert_eq!(
                header(&got, name),
                header(&want, name),
                "{name} of {method} {uri}"
            );
        }
    }
}

#[test]
fn the_guide_shows_the_whole_hello_program() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/application-guide.md")).unwrap();
    let hello = std::fs::read_to_string(root.join("examples/hello.rs")).unwrap();
    let program = &hello[hello.find("use ringgate::app").unwrap()..];
    assert!(
        guide.contains(&format!("```rust,no_run\n{program}```\n")),
        "docs/application-guide.md's first program differs from examples/hello.rs"
    );
}

fn run(program: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn an_application_has_only_the_options_that_apply_to_it() {
    let hello = example("hello");
    let out = run(&hello, &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.starts_with("Answers every request with the URI it asked for\n"),
        "{help}"
    );
    assert!(help.contains("Usage: hello [OPTIONS]"), "{help}");
    assert!(help.contains("--fastcgi <ADDR>"), "{help}");
    assert!(!help.contains("--cgi"), "{help}");
    // The CGI executor's options are a usage error, not silently ignored.
    for args in [&["--cgi", "/tmp"][..], &["--cgi-timeout", "1s"]] {
        let out = run(&hello, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("unexpected argument '{}'", args[0])),
            "{err}"
        );
    }
    // The ringgate binary has them.
    let ringgate = std::path::Path::new(env!("CARGO_BIN_EXE_ringgate"));
    let help = String::from_utf8(run(ringgate, &["--help"]).stdout).unwrap();
    assert!(help.contains("--cgi <DIR>"), "{help}");
    assert!(help.contains("--cgi-timeout"), "{help}");
}

#[test]
fn an_application_is_named_in_its_log_and_build_info() {
    let server = Server::start_program(&example("hello"), "auto", &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains(" ready ") {
        assert!(
            Instant::now() < deadline,
            "no ready line: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.stderr();
    let version = env!("CARGO_PKG_VERSION");
    assert!(log.contains(" application=hello "), "{log}");
    assert!(log.contains(&format!(" version={version} ")), "{log}");
    let text = server.scrape();
    assert!(
        text.contains(&format!(
            "ringgate_build_info{{application=\"hello\",version=\"{version}\",\
             ringgate_version=\"{version}\"}} 1\n"
        )),
        "{text}"
    );
    // It serves FastCGI and SCGI: series for those, none for CGI on stdio.
    assert!(text.contains(r#"ringgate_requests_started_total{protocol="fastcgi"}"#));
    assert!(text.contains(r#"ringgate_requests_started_total{protocol="scgi"}"#));
    assert!(!text.contains(r#"protocol="cgi""#), "{text}");
}

#[test]
fn a_startup_error_is_one_line_with_its_cause_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let ringgate = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ringgate"));
    for (name, program) in [("ringgate", ringgate), ("hello", example("hello"))] {
        let out = run(
            &program,
            &[
                "--fastcgi",
                &addr.to_string(),
                "--no-metrics",
                "--workers",
                "1",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            err,
            format!(
                "{name}: listeners: fastcgi:{addr}: address already in use by another process \
                 (stop that process, or listen elsewhere: --fastcgi/--scgi ADDR, or [listeners] \
                 in the settings file)\n"
            )
        );
    }
}
