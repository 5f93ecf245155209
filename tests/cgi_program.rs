//! `ringgate::cgi::run` as a real CGI program (`ringgate-cgi`, the demo application): the
//! request in the environment and on stdin, the response on stdout. Once directly, as a web
//! server would start it, and once behind lighttpd's mod_cgi.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringgate::proto::cgi::parse_response_head;

fn run_cgi(env: &[(&str, &str)], stdin: &[u8]) -> (u16, Vec<u8>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringgate-cgi"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let (head, used) = parse_response_head(&out.stdout, 65536)
        .unwrap()
        .expect("a complete CGI head");
    (head.status.as_u16(), out.stdout[used..].to_vec())
}

#[test]
fn get_from_the_environment() {
    let env = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/cgi-bin/ringgate-cgi"),
        ("PATH_INFO", "/hello"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ];
    // Behind a script prefix the demo routes on PATH_INFO.
    assert_eq!(run_cgi(&env, b""), (200, b"Hello, world!\n".to_vec()));
    let env = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/hello"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ];
    assert_eq!(run_cgi(&env, b""), (200, b"Hello, world!\n".to_vec()));
}

#[test]
fn post_body_from_stdin_is_echoed() {
    let body: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
    let len = body.len().to_string();
    let env = [
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/echo"),
        ("CONTENT_LENGTH", len.as_str()),
        ("CONTENT_TYPE", "application/octet-stream"),
    ];
    assert_eq!(run_cgi(&env, &body), (200, body));
}

#[test]
fn a_bad_server_protocol_is_a_400() {
    let env = [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/hello"),
        ("SERVER_PROTOCOL", "GOPHER/1"),
    ];
    assert_eq!(run_cgi(&env, b"").0, 400);
}

#[test]
fn behind_lighttpd_mod_cgi() {
    let lighttpd = ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(lighttpd) = lighttpd else {
        assert!(
            std::env::var("CI").is_err(),
            "lighttpd is required under CI (install it in .ci/run)"
        );
        eprintln!("skipping: lighttpd is not installed");
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("ringgate-cgi-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        "server.document-root = \"{www}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
         server.errorlog = \"{dir}/error.log\"\nserver.modules = (\"mod_cgi\", \"mod_alias\")\n\
         alias.url = (\"/app\" => \"{bin}\")\n$HTTP[\"url\"] =~ \"^/app\" {{ cgi.assign = (\"\" => \"\") }}\n",
        www = dir.join("www").display(),
        dir = dir.display(),
        bin = env!("CARGO_BIN_EXE_ringgate-cgi"),
    );
    std::fs::write(dir.join("lighttpd.conf"), conf).unwrap();
    let mut child = Command::new(lighttpd)
        .args(["-D", "-f", dir.join("lighttpd.conf").to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("lighttpd did not start: {e}"),
        }
    };
    // lighttpd runs the program as SCRIPT_NAME=/app with PATH_INFO=/echo-env.
    stream
        .write_all(b"GET /app/echo-env?name=GATEWAY_INTERFACE HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let mut hello = TcpStream::connect(("127.0.0.1", port)).unwrap();
    hello
        .write_all(b"GET /app/hello HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut hello_response = String::new();
    hello.read_to_string(&mut hello_response).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(tmp);
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nCGI/1.1"), "{response}");
    assert!(
        hello_response.starts_with("HTTP/1.0 200"),
        "{hello_response}"
    );
    assert!(
        hello_response.ends_with("Hello, world!\n"),
        "{hello_response}"
    );
}
