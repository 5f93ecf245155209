//! The public server API: `Server::run_until` serves until the caller's future resolves and
//! then drains and returns `Ok`; bad settings and unusable listeners come back as typed
//! errors.

mod support;

use std::time::{Duration, Instant};

use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};
use ringgate::settings::{IoMode, MetricsSetting};
use ringgate::{Server, ServerError, Settings};
use support::{free_port, FcgiConn};

struct Hello;

impl Handler for Hello {
    async fn call(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        Ok(text(http::StatusCode::OK, format!("hi {}\n", req.uri())))
    }
}

fn settings(port: u16) -> Settings {
    let mut s = Settings::default();
    s.listeners.fastcgi = vec![format!("127.0.0.1:{port}").parse().unwrap()];
    s.workers = 2;
    s.pin = false;
    s.io = IoMode::Auto;
    s.metrics = MetricsSetting::Off;
    s
}

#[test]
fn run_until_serves_then_drains_when_the_future_resolves() {
    let port = free_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        Server::new(settings(port), |_worker| Hello).run_until(async {
            let _ = stopped.await;
        })
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the server did not start: {e}"),
        }
    };
    let mut c = FcgiConn::new(stream);
    assert_eq!(
        c.call(1, true, "GET", "/x", b"").http(),
        (200, b"hi /x\n".to_vec())
    );
    drop(c);
    let asked = Instant::now();
    stop.send(()).unwrap();
    server.join().unwrap().expect("a clean stop");
    assert!(asked.elapsed() < Duration::from_secs(5), "stopped at once");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is released"
    );
}

#[test]
fn errors_are_typed() {
    let mut bad = settings(free_port());
    bad.workers = 0;
    let e = Server::new(bad, |_worker| Hello).run().unwrap_err();
    assert!(matches!(e, ServerError::Settings(_)), "{e}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = Server::new(settings(port), |_worker| Hello)
        .run()
        .unwrap_err();
    assert!(
        matches!(
            e,
            ServerError::Setup {
                what: "listeners",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("in use"), "{e}");
}
