//! Zero-copy sends (io_uring SEND_ZC) end to end against the real binary: 8 MiB responses
//! through the forced zero-copy path, byte for byte, and the fallback a connection makes by
//! itself when the kernel reports that it copied (loopback always copies), with both counted
//! in `/metrics`.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::*;

const ZEROCOPY_SENDS: &str = r#"ringgate_sends_total{mode="zerocopy"}"#;
const COPIED: &str = "ringgate_zerocopy_copied_total";
const MIB8: usize = 8 << 20;

/// POST `body` to `/echo` on `c` as request `id` and check the echo byte for byte. The body
/// is written from another thread, so neither side stalls on a full socket buffer.
fn echo(c: &mut FcgiConn<TcpStream>, writer: &TcpStream, id: u16, body: &[u8]) {
    let request = fcgi_request(id, true, "POST", "/echo", body);
    let mut w = writer.try_clone().unwrap();
    let sender = std::thread::spawn(move || w.write_all(&request).unwrap());
    let r = c.responses(&[id]).remove(&id).unwrap();
    sender.join().unwrap();
    let (status, got) = r.http();
    assert_eq!(status, 200);
    assert_eq!(got.len(), body.len());
    assert!(got == body, "request {id}: the echo differs from the body");
}

/// 8 MiB from `/stream`, checked byte for byte.
fn stream_8mib<S: std::io::Read + Write>(c: &mut FcgiConn<S>, id: u16) {
    c.send(&fcgi_request(
        id,
        true,
        "GET",
        "/stream?chunks=128&size=65536",
        b"",
    ));
    let r = c.responses(&[id]).remove(&id).unwrap();
    let (status, got) = r.http();
    assert_eq!(status, 200);
    assert_eq!(got.len(), MIB8);
    assert!(got == expected_stream(128, 65536));
}

/// An io_uring server sending every response zero-copy, falling back after
/// `fallback_after` copied reports in a row (0: never), with `extra` arguments.
fn zero_copy_server_with(fallback_after: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--zerocopy-threshold",
        "1",
        "--zerocopy-fallback-after",
        fallback_after,
    ];
    args.extend_from_slice(extra);
    Server::start("uring", &args)
}

fn zero_copy_server(fallback_after: &str) -> Server {
    zero_copy_server_with(fallback_after, &[])
}

/// A FastCGI connection to `server`, and a second handle on its socket for writing.
fn connect(server: &Server) -> (FcgiConn<TcpStream>, TcpStream) {
    let tcp = TcpStream::connect(("127.0.0.1", server.fastcgi)).unwrap();
    let writer = tcp.try_clone().unwrap();
    (FcgiConn::new(tcp), writer)
}

#[test]
fn forced_zero_copy_sends_8_mib_responses_byte_for_byte() {
    // A connection pins at most the send-queue mark in sends whose notifications have not
    // come, and sends plainly past it; a mark of 64 MiB lets every send here go zero-copy.
    let server = zero_copy_server_with("0", &["--send-queue-high-water", "64MiB"]);
    let (mut c, writer) = connect(&server);
    for id in 1..=3 {
        echo(&mut c, &writer, id, &noise(MIB8, id as u64));
    }
    stream_8mib(&mut c, 4);
    let text = server.scrape();
    let zc = metric(&text, ZEROCOPY_SENDS);
    assert!(zc >= 4.0, "every response went zero-copy\n{text}");
    // Forced: it never falls back, although loopback copies every send.
    assert_eq!(
        metric(&text, r#"ringgate_sends_total{mode="direct"}"#)
            + metric(&text, r#"ringgate_sends_total{mode="ring"}"#),
        0.0,
        "{text}"
    );
    server.wait_metric(COPIED, |v| v >= zc);
}

#[test]
fn a_connection_whose_zero_copy_sends_are_copied_falls_back_by_itself() {
    let server = zero_copy_server("2");
    let (mut c, writer) = connect(&server);
    echo(&mut c, &writer, 1, &noise(MIB8, 1));
    let first = server.wait_metric(COPIED, |v| v >= 2.0);
    let zc = metric(&first, ZEROCOPY_SENDS);
    assert!(zc >= 1.0, "{first}");
    // The copy reports made the connection fall back within the first 8 MiB: the next
    // responses go plainly, byte for byte all the same.
    echo(&mut c, &writer, 2, &noise(MIB8, 2));
    stream_8mib(&mut c, 3);
    let text = server.scrape();
    assert_eq!(metric(&text, ZEROCOPY_SENDS), zc, "{text}");
    assert!(
        metric(&text, r#"ringgate_sends_total{mode="direct"}"#)
            + metric(&text, r#"ringgate_sends_total{mode="ring"}"#)
            > 0.0,
        "{text}"
    );
    // Another connection starts zero-copy again, and falls back the same way.
    let (mut c2, writer) = connect(&server);
    echo(&mut c2, &writer, 1, &noise(MIB8, 3));
    let copied_before = metric(&text, COPIED);
    server.wait_metric(COPIED, |v| v >= copied_before + 2.0);
}

#[test]
fn unix_connections_send_plainly_under_a_zero_copy_setting() {
    let server = zero_copy_server("0");
    let mut c = server.fcgi_unix();
    stream_8mib(&mut c, 1);
    let text = server.scrape();
    assert_eq!(metric(&text, ZEROCOPY_SENDS), 0.0, "{text}");
    assert_eq!(metric(&text, COPIED), 0.0, "{text}");
}

#[test]
fn zero_copy_is_off_by_default() {
    let server = Server::start("uring", &[]);
    let mut c = server.fcgi();
    stream_8mib(&mut c, 1);
    let text = server.scrape();
    assert_eq!(metric(&text, ZEROCOPY_SENDS), 0.0, "{text}");
}
