//! sd_notify messages reach `NOTIFY_SOCKET`. A test binary of its own: it sets an
//! environment variable, which is only sound while no other thread reads the environment.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use ringgate::rt::notify;

#[test]
fn messages_reach_the_notify_socket() {
    let dir = std::env::temp_dir().join(format!("ringgate-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);
    let mut buf = [0u8; 512];
    notify::ready("serving");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving\n");
    notify::stopping("draining");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=draining\n");
    notify::status("x");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STATUS=x\n");
    std::env::remove_var("NOTIFY_SOCKET");
    notify::status("nobody listens");
    sock.set_nonblocking(true).unwrap();
    assert!(
        sock.recv(&mut buf).is_err(),
        "no message without NOTIFY_SOCKET"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
