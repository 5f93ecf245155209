//! A handler that fails, panics, fails mid-body or answers with an interim status, served
//! through the public `Server` over a real socket: nothing sent yet becomes a 500, a started response becomes an aborted request,
//! and the other requests multiplexed on the same connection are not affected.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::StreamBody;
use ringgate::app::{boxed, text, Body, BoxError, Handler, ResponseBody};
use ringgate::settings::{IoMode, MetricsSetting};
use ringgate::{Server, Settings};
use support::{fcgi_request, FcgiConn};

struct Faulty;

impl Handler for Faulty {
    async fn call(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        match request.uri().path() {
            "/error" => Err("the handler failed".into()),
            "/panic" => panic!("the handler panicked"),
            // An interim status where a final one must be: CGI-family protocols cannot carry
            // it, so the client must get a 500 (and the request must end).
            "/early-hints" => Ok(text(http::StatusCode::from_u16(103)?, "too early\n")),
            "/fail-mid-body" => {
                let parts: Vec<Result<http_body::Frame<Bytes>, BoxError>> = vec![
                    Ok(http_body::Frame::data(Bytes::from_static(b"partial"))),
                    Err("broke".into()),
                ];
                let body = StreamBody::new(futures_util::stream::iter(parts));
                Ok(http::Response::new(boxed(body)))
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(text(http::StatusCode::OK, "fine\n"))
            }
        }
    }
}

/// Serves `Faulty` through the public [`Server`] on a loopback port, from a thread of its
/// own (one epoll worker); returns the port once it accepts.
fn serve() -> u16 {
    let port = support::free_port();
    let mut settings = Settings::default();
    settings.listeners.fastcgi = vec![format!("127.0.0.1:{port}").parse().unwrap()];
    settings.workers = 1;
    settings.pin = false;
    settings.io = IoMode::Epoll;
    settings.metrics = MetricsSetting::Off;
    settings.timeouts.handler = Duration::from_secs(5);
    settings.timeouts.write = Duration::from_secs(5);
    std::thread::spawn(move || Server::new(settings, |_worker| Faulty).run().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    port
}

#[test]
fn failures_answer_500_or_abort_and_spare_their_neighbours() {
    let port = serve();
    let mut c = FcgiConn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = Vec::new();
    for (id, path) in [
        (1, "/ok"),
        (2, "/error"),
        (3, "/panic"),
        (4, "/fail-mid-body"),
        (5, "/ok"),
    ] {
        all.extend_from_slice(&fcgi_request(id, true, "GET", path, b""));
    }
    c.send(&all);
    let r = c.responses(&[1, 2, 3, 4, 5]);
    assert_eq!(r[&1].http(), (200, b"fine\n".to_vec()));
    assert_eq!(r[&5].http(), (200, b"fine\n".to_vec()));
    assert_eq!(r[&2].http().0, 500, "an Err before the head is a 500");
    assert_eq!(r[&3].http().0, 500, "a panic before the head is a 500");
    // The head and part of the body went out: the request is ended as aborted (appStatus 1).
    let (status, body) = r[&4].http();
    assert_eq!((status, body.as_slice()), (200, &b"partial"[..]));
    assert_eq!(r[&4].end.unwrap().app_status, 1);
    assert_eq!(r[&1].end.unwrap().app_status, 0);
    // The connection still serves.
    assert_eq!(c.call(9, true, "GET", "/ok", b"").http().0, 200);
}

#[test]
fn an_interim_status_becomes_a_500_and_ends_the_request() {
    let port = serve();
    let mut c = FcgiConn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let r = c.call(1, true, "GET", "/early-hints", b"");
    assert_eq!(r.http().0, 500, "a 1xx final status is answered 500");
    assert!(r.end.is_some(), "the request is ended");
    // The connection still serves.
    assert_eq!(c.call(2, true, "GET", "/ok", b"").http().0, 200);
}
