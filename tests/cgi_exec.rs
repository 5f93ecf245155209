//! The CGI-script executor end to end: the real `ringgate --cgi DIR` binary over FastCGI,
//! with real shell and Perl scripts written into a temporary root by each test. One test per
//! numbered point of the issue: streaming both ways, RFC 3875 heads, lifetimes (timeouts,
//! aborts killing the whole process group), the running cap, the safety rules, the
//! environment, and metrics.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringgate::proto::fastcgi::record::{encode_stream, encode_stream_end};
use ringgate::proto::fastcgi::{encode_pair, BeginRequest, RecordType, Role, FLAG_KEEP_CONN};
use support::*;

/// A root of scripts in a fresh temporary directory (0755, so not writable by others).
struct Root {
    /// `_tmp`'s path.
    dir: PathBuf,
    /// Removes the root when the test ends.
    _tmp: tempfile::TempDir,
}

impl Root {
    fn new(name: &str) -> Self {
        let tmp = temp_dir(&format!("cgi-{name}"));
        let dir = tmp.path().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Root { dir, _tmp: tmp }
    }

    /// Writes an executable script.
    fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    fn start(&self, extra: &[&str]) -> Server {
        self.start_on("auto", extra)
    }

    /// [`Root::start`] on I/O backend `io`.
    fn start_on(&self, io: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--cgi", self.dir.to_str().unwrap()];
        if !extra.contains(&"--cgi-timeout") {
            args.extend(["--cgi-timeout", "3s"]);
        }
        args.extend_from_slice(extra);
        Server::start(io, &args)
    }
}

/// The records of one FastCGI request for `filename` with extra params.
fn request(id: u16, method: &str, filename: &str, body: &[u8], extra: &[(&str, &str)]) -> BytesMut {
    request_uri(id, method, "/cgi-bin/script", filename, body, extra)
}

/// [`request`] for the request URI `uri` (its query becomes `QUERY_STRING`).
fn request_uri(
    id: u16,
    method: &str,
    uri: &str,
    filename: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> BytesMut {
    let mut out = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, id);
    let mut p = BytesMut::new();
    for (n, v) in params(method, uri, body.len()) {
        encode_pair(&mut p, n.as_bytes(), v.as_bytes());
    }
    encode_pair(&mut p, b"SCRIPT_FILENAME", filename.as_bytes());
    for (n, v) in extra {
        encode_pair(&mut p, n.as_bytes(), v.as_bytes());
    }
    encode_stream(&mut out, RecordType::PARAMS, id, &p);
    encode_stream_end(&mut out, RecordType::PARAMS, id);
    encode_stream(&mut out, RecordType::STDIN, id, body);
    encode_stream_end(&mut out, RecordType::STDIN, id);
    out
}

/// One request on a fresh connection, written from a second thread while the response is
/// read (as a front end does), so large bodies both ways cannot block the client itself.
fn call(
    server: &Server,
    method: &str,
    filename: &Path,
    body: &[u8],
    extra: &[(&str, &str)],
) -> FcgiResponse {
    call_records(
        server,
        request(1, method, filename.to_str().unwrap(), body, extra),
    )
}

/// Sends the records of request 1 on a fresh connection (from a second thread) while its
/// response is read.
fn call_records(server: &Server, req: BytesMut) -> FcgiResponse {
    let stream = TcpStream::connect(("127.0.0.1", server.fastcgi)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&req);
    });
    let mut conn = FcgiConn::new(stream);
    let response = conn.responses(&[1]).remove(&1).unwrap();
    sender.join().unwrap();
    response
}

/// A GET for `script` sent on a fresh connection to `port`, whose response is left to read.
fn send_get(port: u16, script: &Path) -> FcgiConn<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut conn = FcgiConn::new(stream);
    conn.send(&request(1, "GET", script.to_str().unwrap(), b"", &[]));
    conn
}

fn get(server: &Server, filename: &Path) -> (u16, Vec<u8>) {
    call(server, "GET", filename, b"", &[]).http()
}

/// Whether process `pid` is gone (or a zombie of a parent that is not ringgate).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> u32 {
    wait_for("a pid file", Duration::from_secs(10), || {
        std::fs::read_to_string(path).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    });
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// --- 1. Full duplex, streaming -------------------------------------------------------------

#[test]
fn a_32_mib_cat_echo_is_byte_exact() {
    cat_echo("auto");
}

#[test]
fn a_32_mib_cat_echo_is_byte_exact_on_epoll() {
    cat_echo("epoll");
}

fn cat_echo(io: &str) {
    let root = Root::new(&format!("cat-{io}"));
    let cat = root.script(
        "cat.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n",
    );
    let server = root.start_on(io, &["--cgi-timeout", "60s"]);
    let body = noise(32 << 20, 1);
    let r = call(&server, "POST", &cat, &body, &[]);
    assert!(r.complete(), "{:?}", r.end);
    let (status, echoed) = r.http();
    assert_eq!(status, 200);
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "the echo differs");
}

#[test]
fn a_client_that_sends_everything_before_reading_still_gets_its_echo() {
    let root = Root::new("sequential");
    let cat = root.script(
        "cat.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
    );
    let server = root.start(&["--cgi-timeout", "60s"]);
    let body = noise(32 << 20, 1);
    let stream = TcpStream::connect(("127.0.0.1", server.fastcgi)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut conn = FcgiConn::new(stream);
    // One blocking write of the whole request, then the response: the body is spooled.
    conn.send(&request(1, "POST", cat.to_str().unwrap(), &body, &[]));
    let r = conn.responses(&[1]).remove(&1).unwrap();
    let (status, echoed) = r.http();
    assert_eq!(status, 200);
    assert!(echoed == body, "the echo differs ({} bytes)", echoed.len());
}

#[test]
fn a_script_that_writes_before_reading_a_large_body_does_not_deadlock() {
    let root = Root::new("wbr");
    let script = root.script(
        "first.pl",
        r#"#!/usr/bin/perl
$| = 1;
print "Content-Type: text/plain\n\n";
print "x" x (1024 * 1024);
my $n = 0; my $buf;
while (my $r = read(STDIN, $buf, 65536)) { $n += $r; }
print "\nread=$n\n";
"#,
    );
    let server = root.start(&["--cgi-timeout", "60s"]);
    let body = noise(8 << 20, 1);
    let (status, out) = call(&server, "POST", &script, &body, &[]).http();
    assert_eq!(status, 200);
    assert_eq!(
        out.len(),
        (1 << 20) + format!("\nread={}\n", body.len()).len()
    );
    assert!(out.ends_with(format!("\nread={}\n", 8 << 20).as_bytes()));
}

#[test]
fn output_is_forwarded_as_the_script_writes_it() {
    let root = Root::new("stream");
    let script = root.script(
        "tick.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho first\nsleep 2\necho second\n",
    );
    let server = root.start(&[]);
    let mut conn = send_get(server.fastcgi, &script);
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while !seen.windows(6).any(|w| w == b"first\n") {
        let r = conn.record().unwrap().unwrap();
        assert_eq!(r.record_type, RecordType::STDOUT, "ended before `first`");
        seen.extend_from_slice(&r.content);
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "output was held back"
    );
    let rest = conn.responses(&[1]).remove(&1).unwrap();
    assert!(rest.complete());
}

#[test]
fn stdin_is_dev_null_without_a_body_and_closes_at_its_end() {
    let root = Root::new("stdin");
    let script = root.script(
        "count.sh",
        "#!/bin/sh\nn=$(wc -c)\nprintf 'Content-Type: text/plain\\n\\n%s\\n' \"$n\"\n",
    );
    let server = root.start(&[]);
    assert_eq!(get(&server, &script), (200, b"0\n".to_vec()));
    let (status, out) = call(&server, "POST", &script, b"hello", &[]).http();
    assert_eq!((status, out), (200, b"5\n".to_vec()));
}

// --- 2. Responses per RFC 3875 section 6 -----------------------------------------------------

#[test]
fn status_location_and_lf_only_heads() {
    let root = Root::new("heads");
    let status = root.script(
        "status.sh",
        "#!/bin/sh\nprintf 'Status: 404 Not Here\\nContent-Type: text/plain\\n\\ngone\\n'\n",
    );
    let crlf = root.script(
        "crlf.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-A: 1\\r\\n\\r\\nok'\n",
    );
    let abs = root.script(
        "abs.sh",
        "#!/bin/sh\nprintf 'Location: https://example.com/x\\n\\n'\n",
    );
    let local = root.script(
        "local.sh",
        "#!/bin/sh\nprintf 'Location: /elsewhere\\n\\n'\n",
    );
    let with_doc = root.script(
        "doc.sh",
        "#!/bin/sh\nprintf 'Status: 301 Moved\\nLocation: https://example.com/y\\nContent-Type: text/plain\\n\\nmoved'\n",
    );
    let server = root.start(&[]);
    assert_eq!(get(&server, &status), (404, b"gone\n".to_vec()));
    assert_eq!(get(&server, &crlf), (200, b"ok".to_vec()));
    assert_eq!(get(&server, &abs).0, 302);
    assert_eq!(get(&server, &local).0, 302);
    assert_eq!(get(&server, &with_doc), (301, b"moved".to_vec()));
    let r = call(&server, "GET", &abs, b"", &[]);
    let text = String::from_utf8_lossy(&r.stdout).to_lowercase();
    assert!(text.contains("location: https://example.com/x"), "{text}");
}

#[test]
fn malformed_empty_and_oversized_heads_are_502() {
    let root = Root::new("bad");
    let malformed = root.script(
        "malformed.sh",
        "#!/bin/sh\nprintf 'this is not a header\\n\\nbody'\n",
    );
    let empty = root.script("empty.sh", "#!/bin/sh\nexit 0\n");
    let failing = root.script("fail.sh", "#!/bin/sh\necho oops >&2\nexit 3\n");
    let huge = root.script(
        "huge.pl",
        "#!/usr/bin/perl\nprint \"X-Big: \" . (\"a\" x 100000) . \"\\n\\n\";\n",
    );
    let edge = root.script(
        "edge.pl",
        // A head of exactly 1000 bytes: 'X: ' + 993 + '\n' + '\n' = 3 + 993 + 2 + 2 = 1000.
        "#!/usr/bin/perl\nprint \"X: \" . (\"a\" x 993) . \"\\r\\n\\r\\n\";\n",
    );
    let over = root.script(
        "over.pl",
        "#!/usr/bin/perl\nprint \"X: \" . (\"a\" x 994) . \"\\r\\n\\r\\n\";\n",
    );
    let server = root.start(&["--cgi-max-head-bytes", "1000"]);
    assert_eq!(get(&server, &over).0, 502, "a head of 1001 bytes");
    assert_eq!(get(&server, &malformed).0, 502);
    assert_eq!(get(&server, &empty).0, 502);
    assert_eq!(get(&server, &failing).0, 502);
    assert_eq!(get(&server, &huge).0, 502);
    assert_eq!(get(&server, &edge).0, 200);
    // A valid head and an exit status of 3: the status goes in END_REQUEST's appStatus.
    let exit3 = root.script(
        "exit3.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nx'\nexit 3\n",
    );
    let r = call(&server, "GET", &exit3, b"", &[]);
    assert_eq!(r.http(), (200, b"x".to_vec()));
    assert_eq!(r.end.unwrap().app_status, 3);
    let log = server.stderr();
    assert!(log.contains("502"), "{log}");
    assert!(log.contains("stderr: oops"), "{log}");
}

#[test]
fn nph_scripts_and_head_requests() {
    let root = Root::new("nph");
    let nph = root.script(
        "nph-status.sh",
        "#!/bin/sh\nprintf 'HTTP/1.1 418 Teapot\\r\\nContent-Type: text/plain\\r\\n\\r\\nshort and stout'\n",
    );
    let bare = root.script(
        "nph-bare.sh",
        "#!/bin/sh\nprintf 'HTTP/1.0 204 No Content\\r\\n\\r\\n'\n",
    );
    let big = root.script(
        "big.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nhead -c 1000000 /dev/zero\necho done >&2\n",
    );
    let server = root.start(&[]);
    assert_eq!(get(&server, &nph), (418, b"short and stout".to_vec()));
    assert_eq!(get(&server, &bare).0, 204);
    let r = call(&server, "HEAD", &big, b"", &[]);
    assert!(r.complete());
    assert_eq!(r.http(), (200, Vec::new()));
    assert_eq!(get(&server, &big).1.len(), 1_000_000);
}

// --- 3. Lifetimes ----------------------------------------------------------------------------

#[test]
fn a_script_without_a_head_in_time_is_killed_and_answered_504() {
    let root = Root::new("slow");
    let pidfile = root.dir.join("slow.pid");
    let script = root.script(
        "slow.sh",
        &format!("#!/bin/sh\necho $$ > {}\nsleep 30\n", pidfile.display()),
    );
    let server = root.start(&["--cgi-kill-grace", "500ms"]);
    let t0 = Instant::now();
    assert_eq!(get(&server, &script).0, 504);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let pid = read_pid(&pidfile);
    wait_for("the script to end", Duration::from_secs(5), || gone(pid));
    server.wait_metric(
        r#"ringgate_cgi_scripts_ended_total{outcome="killed_timeout"}"#,
        |v| v >= 1.0,
    );
}

#[test]
fn a_script_that_stops_writing_is_ended_by_the_idle_timeout() {
    let root = Root::new("idle");
    let script = root.script(
        "stall.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nsome'\nsleep 30\n",
    );
    let server = root.start(&["--cgi-timeout", "30s", "--cgi-idle-timeout", "1s"]);
    let t0 = Instant::now();
    let r = call(&server, "GET", &script, b"", &[]);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(r.end.is_some());
    assert!(String::from_utf8_lossy(&r.stdout).contains("some"));
}

/// A script that starts a grandchild in its own group, reports both pids and waits.
fn family_script(root: &Root, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (me, kid) = (
        root.dir.join(format!("{name}.pid")),
        root.dir.join(format!("{name}.kid")),
    );
    let script = root.script(
        &format!("{name}.sh"),
        &format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > {kid}\necho $$ > {me}\nprintf 'Content-Type: text/plain\\n\\nstarted\\n'\nwait\n",
            kid = kid.display(),
            me = me.display()
        ),
    );
    (script, me, kid)
}

#[test]
fn an_abort_kills_the_whole_process_group() {
    let root = Root::new("abort");
    let (script, me, kid) = family_script(&root, "family");
    let server = root.start(&["--cgi-timeout", "60s", "--cgi-kill-grace", "500ms"]);
    let mut conn = send_get(server.fastcgi, &script);
    let first = conn.record().unwrap().unwrap();
    assert_eq!(first.record_type, RecordType::STDOUT);
    let (pid, kid) = (read_pid(&me), read_pid(&kid));
    assert!(!gone(pid) && !gone(kid));
    conn.abort(1);
    wait_for(
        "the script and its grandchild to end",
        Duration::from_secs(5),
        || gone(pid) && gone(kid),
    );
    // Reaped by ringgate: not even a zombie is left.
    wait_for("the script to be reaped", Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    server.wait_metric(
        r#"ringgate_cgi_scripts_ended_total{outcome="killed_abort"}"#,
        |v| v >= 1.0,
    );
    server.wait_metric("ringgate_cgi_scripts_running", |v| v == 0.0);
}

#[test]
fn a_lost_connection_kills_the_whole_process_group_on_epoll_too() {
    let root = Root::new("lost");
    let (script, me, kid) = family_script(&root, "lost");
    let mut args = vec![
        "--cgi",
        root.dir.to_str().unwrap(),
        "--cgi-kill-grace",
        "500ms",
    ];
    args.extend(["--cgi-timeout", "60s"]);
    let server = Server::start("epoll", &args);
    let mut conn = send_get(server.fastcgi, &script);
    assert_eq!(
        conn.record().unwrap().unwrap().record_type,
        RecordType::STDOUT
    );
    let (pid, kid) = (read_pid(&me), read_pid(&kid));
    // A reset connection (a front end that went away; a plain FIN is tested above).
    socket2::SockRef::from(&conn.stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(conn);
    wait_for(
        "the script and its grandchild to end",
        Duration::from_secs(5),
        || gone(pid) && gone(kid),
    );
}

/// A script that writes its pid and then waits silently (no head, no output).
fn silent_script(root: &Root, name: &str) -> (PathBuf, PathBuf) {
    let pid_file = root.dir.join(format!("{name}.pid"));
    let script = root.script(
        &format!("{name}.sh"),
        &format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 1000\n",
            pid_file.display()
        ),
    );
    (script, pid_file)
}

fn a_close_from_the_front_end_ends_a_silent_script(io: &str) {
    let root = Root::new(&format!("fin-{io}"));
    let (script, pid_file) = silent_script(&root, "silent");
    let server = root.start_on(io, &["--cgi-timeout", "60s", "--cgi-kill-grace", "500ms"]);
    let conn = send_get(server.fastcgi, &script);
    let pid = read_pid(&pid_file);
    // What nginx does when its client leaves: close(2), a plain FIN, nothing unread.
    drop(conn);
    wait_for("the silent script to end", Duration::from_secs(5), || {
        gone(pid)
    });
    server.wait_metric(
        r#"ringgate_cgi_scripts_ended_total{outcome="killed_abort"}"#,
        |v| v >= 1.0,
    );
    server.wait_metric("ringgate_cgi_scripts_running", |v| v == 0.0);
    assert!(server
        .stderr()
        .contains("the front end closed the connection"));
}

#[test]
fn a_close_from_the_front_end_ends_a_silent_script_on_io_uring() {
    a_close_from_the_front_end_ends_a_silent_script("auto");
}

#[test]
fn a_close_from_the_front_end_ends_a_silent_script_on_epoll() {
    a_close_from_the_front_end_ends_a_silent_script("epoll");
}

#[test]
fn with_stop_on_close_off_a_half_closing_front_end_still_gets_its_answer() {
    let root = Root::new("fin-off");
    let script = root.script(
        "late.sh",
        "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\n\\nlate\\n'\n",
    );
    let config = root.dir.join("cgi.toml");
    std::fs::write(
        &config,
        format!(
            "[[cgi]]\nroot = \"{}\"\nstop_on_close = false\n",
            root.path()
        ),
    )
    .unwrap();
    let server = Server::start("auto", &["--config", config.to_str().unwrap()]);
    let mut conn = send_get(server.fastcgi, &script);
    tcp_half_close(&conn.stream);
    let response = conn.responses(&[1]).remove(&1).unwrap();
    assert_eq!(response.http(), (200, b"late\n".to_vec()));
}

#[test]
fn what_a_script_leaves_behind_is_ended_when_it_exits() {
    let root = Root::new("leftover");
    let kid = root.dir.join("bg.kid");
    let script = root.script(
        "bg.sh",
        &format!(
            "#!/bin/sh\nsleep 1000 >/dev/null 2>&1 </dev/null &\necho $! > {}\nprintf 'Content-Type: text/plain\\n\\ndone'\n",
            kid.display()
        ),
    );
    let server = root.start(&["--cgi-kill-grace", "500ms"]);
    assert_eq!(get(&server, &script), (200, b"done".to_vec()));
    let kid = read_pid(&kid);
    wait_for(
        "the background process to end",
        Duration::from_secs(5),
        || gone(kid),
    );
}

#[test]
fn a_shutdown_ends_running_scripts() {
    let root = Root::new("shutdown");
    let (script, me, kid) = family_script(&root, "down");
    let mut server = root.start(&["--cgi-timeout", "60s", "--drain-timeout", "1s"]);
    let mut conn = send_get(server.fastcgi, &script);
    assert_eq!(
        conn.record().unwrap().unwrap().record_type,
        RecordType::STDOUT
    );
    let (pid, kid) = (read_pid(&me), read_pid(&kid));
    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(15)).is_some(),
        "ringgate did not stop"
    );
    wait_for(
        "the script and its grandchild to end",
        Duration::from_secs(5),
        || gone(pid) && gone(kid),
    );
}

#[test]
fn hundreds_of_requests_leave_no_zombie() {
    let root = Root::new("zombies");
    let hello = root.script(
        "hello.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n",
    );
    let server = root.start(&[]);
    for _ in 0..200 {
        assert_eq!(get(&server, &hello), (200, b"hi".to_vec()));
    }
    let children = || -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                stat.rsplit_once(')').is_some_and(|(_, rest)| {
                    rest.split_whitespace().nth(1) == Some(&server.child.id().to_string())
                })
            })
            .count()
    };
    wait_for("every script to be reaped", Duration::from_secs(5), || {
        children() == 0
    });
    server.wait_metric(r#"ringgate_cgi_scripts_ended_total{outcome="ok"}"#, |v| {
        v >= 200.0
    });
}

// --- 4. Bounded concurrency ------------------------------------------------------------------

#[test]
fn beyond_the_running_cap_and_queue_requests_get_503() {
    let root = Root::new("cap");
    let slow = root.script(
        "slow.sh",
        "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\n\\nslow'\n",
    );
    let server = root.start(&[
        "--workers",
        "1",
        "--cgi-max-running",
        "1",
        "--cgi-max-queued",
        "1",
        "--cgi-queue-timeout",
        "5s",
    ]);
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (slow, port) = (slow.clone(), server.fastcgi);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150 * i));
                let mut conn = send_get(port, &slow);
                conn.responses(&[1]).remove(&1).unwrap().http().0
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    // One runs, one waits its turn (within the queue timeout), the third is refused.
    assert_eq!(statuses, [200, 200, 503]);
    server.wait_metric(r#"ringgate_cgi_refusals_total{reason="overloaded"}"#, |v| {
        v >= 1.0
    });
}

#[test]
fn thirty_two_slow_scripts_run_at_once() {
    let root = Root::new("many");
    let slow = root.script(
        "slow.sh",
        "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    );
    let server = root.start(&[]);
    let t0 = Instant::now();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let (slow, port) = (slow.clone(), server.fastcgi);
            std::thread::spawn(move || {
                let mut conn = send_get(port, &slow);
                conn.responses(&[1]).remove(&1).unwrap().http()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (200, b"ok".to_vec()));
    }
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
}

// --- 5. Safety -------------------------------------------------------------------------------

#[test]
fn refused_scripts_never_run() {
    let root = Root::new("safety");
    let marker = root.dir.join("ran");
    let body = format!(
        "#!/bin/sh\ntouch {}\nprintf 'Content-Type: text/plain\\n\\nran'\n",
        marker.display()
    );
    let outside_dir = temp_dir("cgi-outside");
    let outside = outside_dir.path().join("evil.sh");
    std::fs::write(&outside, &body).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&outside, root.dir.join("link.sh")).unwrap();
    let plain = root.script("plain.sh", &body);
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let writable = root.script("writable.sh", &body);
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o757)).unwrap();
    let open_dir = root.dir.join("open");
    root.script("open/in.sh", &body);
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    root.script(
        "sub/ok.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    );
    let server = root.start(&[]);
    let r = root.path();
    let cases = [
        (
            format!(
                "{r}/../{}/evil.sh",
                outside_dir.path().file_name().unwrap().to_str().unwrap()
            ),
            403,
        ),
        (outside.display().to_string(), 403),
        (format!("{r}/link.sh"), 403),
        (format!("{r}/plain.sh"), 403),
        (format!("{r}/writable.sh"), 403),
        (format!("{r}/open/in.sh"), 403),
        (format!("{r}/missing.sh"), 404),
        (format!("{r}/sub"), 403),
        ("relative/x.sh".to_string(), 403),
    ];
    for (path, want) in cases {
        assert_eq!(get(&server, Path::new(&path)).0, want, "{path}");
    }
    assert!(!marker.exists(), "a refused script ran");
    // The same root serves its good script, with extra path components as PATH_INFO.
    assert_eq!(
        get(&server, &root.dir.join("sub/ok.sh")),
        (200, b"ok".to_vec())
    );
}

#[test]
fn the_environment_is_an_allowlist_and_the_working_directory_the_scripts() {
    let root = Root::new("env");
    let script = root.script(
        "sub/env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv\necho \"PWD_IS=$(pwd)\"\n",
    );
    let server = root.start(&["--cgi-env", "GIT_PROJECT_ROOT=/srv/git"]);
    let path_with_extra = format!("{}/more/path", script.display());
    let (status, out) = call(
        &server,
        "GET",
        Path::new(&path_with_extra),
        b"",
        &[
            ("HTTP_PROXY", "http://evil:8080"),
            ("HTTP_AUTHORIZATION", "Basic eDp5"),
            ("HTTP_X_CUSTOM", "yes"),
        ],
    )
    .http();
    assert_eq!(status, 200);
    let env = String::from_utf8(out).unwrap();
    let has = |line: &str| env.lines().any(|l| l == line);
    let named = |name: &str| env.lines().any(|l| l.starts_with(&format!("{name}=")));
    assert!(!named("HTTP_PROXY"), "{env}");
    assert!(!named("HTTP_AUTHORIZATION"), "{env}");
    // The test process's own environment (cargo sets these) does not leak through ringgate.
    assert!(!named("CARGO_MANIFEST_DIR"), "{env}");
    assert!(named("PATH"), "{env}");
    assert!(has("HTTP_X_CUSTOM=yes"), "{env}");
    assert!(has("GIT_PROJECT_ROOT=/srv/git"), "{env}");
    assert!(has("GATEWAY_INTERFACE=CGI/1.1"), "{env}");
    assert!(has("PATH_INFO=/more/path"), "{env}");
    assert!(
        has(&format!("SCRIPT_FILENAME={}", script.display())),
        "{env}"
    );
    assert!(
        has(&format!("PWD_IS={}", root.dir.join("sub").display())),
        "{env}"
    );
}

#[test]
fn per_root_user_and_limits_from_the_settings_file() {
    let root = Root::new("limits");
    let script = root.script(
        "ids.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"nofile=$(ulimit -n) uid=$(id -u)\"\n",
    );
    // SAFETY: geteuid only reads the process's effective user id.
    let as_root = unsafe { libc::geteuid() } == 0;
    let config = root.dir.join("cgi.toml");
    std::fs::write(
        &config,
        format!(
            "[[cgi]]\nroot = \"{}\"\nrlimit_nofile = 64\n{}",
            root.path(),
            if as_root { "user = \"nobody\"\n" } else { "" }
        ),
    )
    .unwrap();
    let server = Server::start("auto", &["--config", config.to_str().unwrap()]);
    let (status, out) = get(&server, &script);
    assert_eq!(status, 200);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("nofile=64 "), "{out}");
    if as_root {
        assert_eq!(out.trim_end(), "nofile=64 uid=65534");
    }
}

#[test]
fn a_root_given_through_a_symbolic_link_serves_both_names() {
    let root = Root::new("linked");
    let script = root.script(
        "hi.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n",
    );
    let link = root.dir.with_extension("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&root.dir, &link).unwrap();
    let server = Server::start("auto", &["--cgi", link.to_str().unwrap()]);
    assert_eq!(get(&server, &link.join("hi.sh")), (200, b"hi".to_vec()));
    assert_eq!(get(&server, &script), (200, b"hi".to_vec()));
    let _ = std::fs::remove_file(&link);
}

#[test]
fn with_a_small_spool_a_script_that_writes_first_still_does_not_deadlock() {
    let root = Root::new("spool");
    let script = root.script(
        "first.pl",
        r#"#!/usr/bin/perl
$| = 1;
print "Content-Type: text/plain\n\n";
print "y" x (2 * 1024 * 1024);
my $n = 0; my $buf;
while (my $r = read(STDIN, $buf, 65536)) { $n += $r; }
print "\nread=$n\n";
"#,
    );
    let config = root.dir.join("cgi.toml");
    std::fs::write(
        &config,
        format!(
            "[[cgi]]\nroot = \"{}\"\nbody_spool_bytes = \"1MiB\"\nhead_hold_bytes = \"256KiB\"\n",
            root.path()
        ),
    )
    .unwrap();
    let server = Server::start("auto", &["--config", config.to_str().unwrap()]);
    let body = noise(8 << 20, 1);
    let (status, out) = call(&server, "POST", &script, &body, &[]).http();
    assert_eq!(status, 200);
    assert!(out.ends_with(format!("\nread={}\n", 8 << 20).as_bytes()));
    assert_eq!(out.len(), (2 << 20) + format!("\nread={}\n", 8 << 20).len());
}

// --- 6. Observability ------------------------------------------------------------------------

const STDERR_SCRIPT: &str =
    "#!/bin/sh\necho 'first warning' >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\necho 'second warning' >&2\nexit 3\n";

#[test]
fn stderr_goes_to_the_front_end_as_fcgi_stderr_when_configured() {
    let root = Root::new("stderr-fcgi");
    let script = root.script("warn.sh", STDERR_SCRIPT);
    let server = root.start(&["--cgi-stderr", "fastcgi"]);
    let mut conn = send_get(server.fastcgi, &script);
    let (mut stdout, mut stderr, mut stderr_ended) = (Vec::new(), Vec::new(), false);
    let end = loop {
        let r = conn.record().unwrap().expect("records up to END_REQUEST");
        match r.record_type {
            RecordType::STDOUT => stdout.extend_from_slice(&r.content),
            RecordType::STDERR if r.content.is_empty() => stderr_ended = true,
            RecordType::STDERR => {
                assert!(!stderr_ended, "STDERR data after the end of the stream");
                stderr.extend_from_slice(&r.content);
            }
            RecordType::END_REQUEST => break r,
            other => panic!("unexpected record {other:?}"),
        }
    };
    assert_eq!(
        String::from_utf8_lossy(&stderr),
        "first warning\nsecond warning\n"
    );
    assert!(
        stderr_ended,
        "the STDERR stream must end before END_REQUEST"
    );
    assert!(String::from_utf8_lossy(&stdout).ends_with("\r\n\r\nok\n"));
    let end = ringgate::proto::fastcgi::EndRequest::parse(&end.content).unwrap();
    assert_eq!(end.app_status, 3, "the exit status is the appStatus");
    assert!(!server.stderr().contains("first warning"), "not logged too");
}

#[test]
fn stderr_is_logged_by_default_with_the_requests_identity() {
    let root = Root::new("stderr-log");
    let script = root.script("warn.sh", STDERR_SCRIPT);
    let server = root.start(&[]);
    let response = call(&server, "GET", &script, b"", &[]);
    assert!(response.stderr.is_empty(), "no FCGI_STDERR by default");
    assert_eq!(response.http(), (200, b"ok\n".to_vec()));
    wait_for(
        "the stderr lines in the log",
        Duration::from_secs(5),
        || {
            let log = server.stderr();
            log.contains("second warning") && log.contains("GET /cgi-bin/script")
        },
    );
}

// --- Issue 22: hostile peers, round two ------------------------------------------------------

/// Names of the lines `env` printed.
fn env_names(env: &str) -> Vec<&str> {
    env.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn request_params_never_reach_the_scripts_environment_beyond_cgi_and_http_variables() {
    let root = Root::new("env-hostile");
    // `/usr/bin/env` by its path: a PATH from the request must not matter to the test.
    let script = root.script(
        "env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n/usr/bin/env\n",
    );
    let server = root.start(&[
        "--cgi-env",
        "GIT_PROJECT_ROOT=/srv/git",
        "--cgi-env",
        "REMOTE_USER=operator",
    ]);
    let hostile = [
        ("PATH", "/tmp/evil"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("BASH_ENV", "/tmp/evil.sh"),
        ("ENV", "/tmp/evil.sh"),
        (
            "GIT_CONFIG_PARAMETERS",
            "'uploadpack.packobjectshook'='touch /tmp/pwned'",
        ),
        ("GIT_PROJECT_ROOT", "/"),
        ("GIT_HTTP_EXPORT_ALL", "1"),
        ("FOO", "bar"),
        ("http_proxy", "http://evil:8080"),
        ("SSL_CERT_FILE", "/tmp/evil.pem"),
        ("REMOTE_USER", "peer"),
        ("HTTP_X_FOO", "yes"),
    ];
    let req = request_uri(
        1,
        "GET",
        "/cgi-bin/env.sh?a=1&b=2",
        script.to_str().unwrap(),
        b"",
        &hostile,
    );
    let (status, out) = call_records(&server, req).http();
    assert_eq!(status, 200);
    let env = String::from_utf8(out).unwrap();
    let names = env_names(&env);
    for name in [
        "LD_PRELOAD",
        "BASH_ENV",
        "ENV",
        "GIT_CONFIG_PARAMETERS",
        "GIT_HTTP_EXPORT_ALL",
        "FOO",
        "http_proxy",
        "SSL_CERT_FILE",
    ] {
        assert!(!names.contains(&name), "{name} reached the script:\n{env}");
    }
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(!has("PATH=/tmp/evil"), "{env}");
    assert!(names.contains(&"PATH"), "{env}");
    // The operator's values win over the request's.
    assert!(has("GIT_PROJECT_ROOT=/srv/git"), "{env}");
    assert!(has("REMOTE_USER=operator"), "{env}");
    // CGI/1.1 meta-variables and HTTP_* do pass.
    assert!(has("HTTP_X_FOO=yes"), "{env}");
    assert!(has("QUERY_STRING=a=1&b=2"), "{env}");
    assert!(has("REQUEST_METHOD=GET"), "{env}");
    assert!(has("REMOTE_ADDR=127.0.0.1"), "{env}");
    assert!(has("SERVER_NAME=localhost"), "{env}");
    // Dropped variables are counted (PATH, LD_PRELOAD, BASH_ENV, ENV, GIT_CONFIG_PARAMETERS,
    // GIT_PROJECT_ROOT and GIT_HTTP_EXPORT_ALL, FOO, http_proxy, SSL_CERT_FILE).
    server.wait_metric("ringgate_cgi_env_dropped_total", |v| v >= 10.0);
}

/// The children of process `parent` (any state), from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Scripts whose descendants leave the script's process group: `setsid` in the background,
/// a daemon's double fork with `setsid`, and a `setsid` process that keeps stdout open (which
/// would hold the response until the idle timeout).
fn escaping_processes_are_ended(io: &str) {
    let root = Root::new(&format!("setsid-{io}"));
    let pid_file = |n: &str| root.dir.join(format!("{n}.pid"));
    let (k1, k2, k3) = (pid_file("setsid"), pid_file("daemon"), pid_file("holder"));
    let detached = root.script(
        "detach.sh",
        &format!(
            "#!/bin/sh\n\
             setsid sh -c 'echo $$ > {k1}; exec sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             ( setsid sh -c 'echo $$ > {k2}; exec sleep 1000' </dev/null >/dev/null 2>&1 & )\n\
             while [ ! -s {k1} ] || [ ! -s {k2} ]; do sleep 0.05; done\n\
             printf 'Content-Type: text/plain\\n\\ndone'\n",
            k1 = k1.display(),
            k2 = k2.display()
        ),
    );
    let holder = root.script(
        "hold.sh",
        &format!(
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nheld'\n\
             setsid sh -c 'echo $$ > {k3}; exec sleep 1000' &\n\
             while [ ! -s {k3} ]; do sleep 0.05; done\n",
            k3 = k3.display()
        ),
    );
    let server = root.start_on(
        io,
        &[
            "--cgi-timeout",
            "60s",
            "--cgi-idle-timeout",
            "20s",
            "--cgi-kill-grace",
            "500ms",
        ],
    );
    assert_eq!(get(&server, &detached), (200, b"done".to_vec()));
    let t0 = Instant::now();
    let r = call(&server, "GET", &holder, b"", &[]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a detached process holding stdout held the response for {:?}",
        t0.elapsed()
    );
    assert_eq!(r.http(), (200, b"held".to_vec()));
    let pids = [read_pid(&k1), read_pid(&k2), read_pid(&k3)];
    wait_for(
        "the processes that left the group to end",
        Duration::from_secs(5),
        || pids.iter().all(|&p| gone(p)),
    );
    // Reaped too: ringgate keeps no zombie (nor any other child) once its scripts ended.
    wait_for("every child to be reaped", Duration::from_secs(5), || {
        children_of(server.child.id()).is_empty()
    });
}

#[test]
fn processes_that_escape_the_group_are_ended_on_io_uring() {
    escaping_processes_are_ended("uring");
}

#[test]
fn processes_that_escape_the_group_are_ended_on_epoll() {
    escaping_processes_are_ended("epoll");
}

/// `n` POSTs of `len` bytes to `script` at once, each on its own connection; their statuses.
fn concurrent_posts(
    server: &Server,
    script: &Path,
    n: usize,
    len: usize,
) -> Vec<std::thread::JoinHandle<u16>> {
    (0..n)
        .map(|i| {
            let req = request(
                1,
                "POST",
                script.to_str().unwrap(),
                &noise(len, i as u64 + 1),
                &[],
            );
            let port = server.fastcgi;
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                let sender = std::thread::spawn(move || {
                    let _ = writer.write_all(&req);
                });
                let mut conn = FcgiConn::new(stream);
                let status = conn.responses(&[1]).remove(&1).unwrap().http().0;
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                let _ = sender.join();
                status
            })
        })
        .collect()
}

#[test]
fn a_spooled_body_costs_no_more_than_body_spool_bytes() {
    let root = Root::new("spool-rss");
    // Never reads its body, answers late: every request's spool fills and stays full.
    let nap = root.script(
        "nap.sh",
        "#!/bin/sh\nsleep 8\nprintf 'Content-Type: text/plain\\n\\nlate'\n",
    );
    let config = root.dir.join("cgi.toml");
    std::fs::write(
        &config,
        format!(
            "[[cgi]]\nroot = \"{}\"\nbody_spool_bytes = \"8MiB\"\ntimeout = \"30s\"\nhead_timeout = \"20s\"\nidle_timeout = \"20s\"\n",
            root.path()
        ),
    )
    .unwrap();
    let server = Server::start(
        "epoll",
        &["--workers", "1", "--config", config.to_str().unwrap()],
    );
    let hello = root.script(
        "hello.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n",
    );
    assert_eq!(get(&server, &hello), (200, b"hi".to_vec()));
    let before = server.rss();
    let (n, spool) = (6, 8 << 20);
    let posts = concurrent_posts(&server, &nap, n, 24 << 20);
    // Until the spools are full (RSS stops growing).
    let mut peak = before;
    let mut still = 0;
    while still < 10 {
        std::thread::sleep(Duration::from_millis(200));
        let rss = server.rss();
        if rss > peak + (256 << 10) {
            peak = rss;
            still = 0;
        } else {
            still += 1;
        }
    }
    let per_request = peak.saturating_sub(before) / n as u64;
    eprintln!("RSS {before} -> {peak}: {per_request} bytes per request");
    // The spool plus a frame in the engine, a block being filled and the connection's own
    // buffers: well under 1 MiB beyond the spool.
    assert!(
        per_request < spool + (1 << 20),
        "{per_request} bytes per request against a spool of {spool}"
    );
    for p in posts {
        assert_eq!(p.join().unwrap(), 200);
    }
}

#[test]
fn a_request_over_the_workers_spool_budget_gets_503_while_others_are_served() {
    let root = Root::new("spool-budget");
    let nap = root.script(
        "nap.sh",
        "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\n\\nlate'\n",
    );
    let hello = root.script(
        "hello.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n",
    );
    let cat = root.script(
        "cat.sh",
        "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
    );
    let config = root.dir.join("cgi.toml");
    std::fs::write(
        &config,
        format!(
            "[[cgi]]\nroot = \"{}\"\nbody_spool_bytes = \"1MiB\"\nbody_spool_budget_bytes = \"2MiB\"\n",
            root.path()
        ),
    )
    .unwrap();
    let server = Server::start(
        "auto",
        &["--workers", "1", "--config", config.to_str().unwrap()],
    );
    // Three bodies of 4 MiB to a script that does not read: two spools fill the budget.
    let posts = concurrent_posts(&server, &nap, 3, 4 << 20);
    server.wait_metric(
        r#"ringgate_cgi_refusals_total{reason="spool_budget"}"#,
        |v| v >= 1.0,
    );
    // Meanwhile, requests without a body and bodies a script reads are served.
    assert_eq!(get(&server, &hello), (200, b"hi".to_vec()));
    // A body the script's pipe takes at once needs no spool.
    let body = noise(16 << 10, 9);
    let (status, echoed) = call(&server, "POST", &cat, &body, &[]).http();
    assert_eq!(status, 200);
    assert!(echoed == body, "the echo differs");
    let mut statuses: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503]);
}

#[test]
fn output_held_until_the_body_is_in_costs_what_it_holds() {
    let root = Root::new("hold-rss");
    // A byte at a time while the request body is still arriving (the head is held).
    let drip = root.script(
        "drip.pl",
        "#!/usr/bin/perl\n$| = 1;\nprint \"Content-Type: text/plain\\n\\n\";\n\
         for (1..4000) { print 'x'; select(undef, undef, undef, 0.0005); }\nsleep 30;\n",
    );
    let server = Server::start("epoll", &["--workers", "1", "--cgi", &root.path()]);
    let hello = root.script(
        "hello.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhi'\n",
    );
    assert_eq!(get(&server, &hello), (200, b"hi".to_vec()));
    let before = server.rss();
    // A body of 1 MiB announced, 16 KiB of it sent, STDIN never ended.
    let mut p = BytesMut::new();
    for (n, v) in params("POST", "/cgi-bin/drip", 1 << 20) {
        encode_pair(&mut p, n.as_bytes(), v.as_bytes());
    }
    encode_pair(
        &mut p,
        b"SCRIPT_FILENAME",
        drip.to_str().unwrap().as_bytes(),
    );
    let mut records = BytesMut::new();
    BeginRequest {
        role: Role::RESPONDER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut records, 1);
    encode_stream(&mut records, RecordType::PARAMS, 1, &p);
    encode_stream_end(&mut records, RecordType::PARAMS, 1);
    encode_stream(&mut records, RecordType::STDIN, 1, &[0u8; 16 << 10]);
    let mut conn = FcgiConn::new(TcpStream::connect(("127.0.0.1", server.fastcgi)).unwrap());
    conn.send(&records);
    // The 4,000 writes take 2-4 s; then the script sleeps.
    std::thread::sleep(Duration::from_secs(6));
    let grown = server.rss().saturating_sub(before);
    eprintln!("RSS grew {grown} bytes holding 4,000 bytes of output");
    assert!(
        grown < 16 << 20,
        "{grown} bytes to hold 4,000 bytes of output"
    );
    drop(conn);
}
