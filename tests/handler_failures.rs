//! A handler that fails, panics, or fails mid-body, served through the real driver over a
//! real socket: nothing sent yet becomes a 500, a started response becomes an aborted request,
//! and the other requests multiplexed on the same connection are not affected.

mod support;

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::StreamBody;
use ringgate::app::{boxed, text, Body, BoxError, Handler, ResponseBody};
use ringgate::channel::{FastCgiEngine, Limits, Timeouts};
use ringgate::metrics::{ListenerNames, WorkerMetrics};
use ringgate::rt::driver::{self, WorkerShared};
use ringgate::rt::io::epoll_tcp_halves;
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

/// Serves `Faulty` on a loopback port from a thread of its own; returns the port.
fn serve() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let label = ListenerNames::new().add("test");
            let worker = WorkerShared::new(
                Faulty,
                Rc::new(WorkerMetrics::disabled()),
                Limits::default(),
                Timeouts::default(),
                Duration::from_secs(5),
                Duration::from_secs(5),
                100,
            );
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, w) = epoll_tcp_halves(stream);
                let engine =
                    FastCgiEngine::new(Limits::default(), Timeouts::default(), Instant::now());
                tokio::task::spawn_local(driver::serve(engine, r, w, worker.clone(), label));
            }
        });
    });
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
