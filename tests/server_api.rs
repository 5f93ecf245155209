//! The public server API: `Server::run_until` serves until the caller's future resolves and
//! then drains and returns `Ok`; bad settings and unusable listeners come back as typed
//! errors that print as one line with what to do; a tower service served through `app::tower` has its future dropped when the
//! request is aborted.

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
    // One line with what to do, also as Debug (what `main` returning a Result prints).
    assert!(
        e.to_string()
            .contains("(stop that process, or listen elsewhere"),
        "{e}"
    );
    assert_eq!(format!("{e:?}"), e.to_string());
}

/// A tower service whose future never ends and says when it is dropped.
#[derive(Clone)]
struct Stuck(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// Counts a drop.
struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tower_service::Service<http::Request<Body>> for Stuck {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>>>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let flag = DropFlag(self.0.clone());
        Box::pin(async move {
            let _flag = flag;
            if req.uri().path() == "/stuck" {
                std::future::pending::<()>().await;
            }
            Ok(http::Response::new("ok\n".to_owned()))
        })
    }
}

#[test]
fn a_tower_service_future_is_dropped_when_its_request_is_aborted() {
    let port = free_port();
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = Stuck(dropped.clone());
    std::thread::spawn(move || {
        Server::new(settings(port), ringgate::app::tower::local_service(service)).run()
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
        c.call(1, true, "GET", "/", b"").http(),
        (200, b"ok\n".to_vec())
    );
    let before = dropped.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, 1, "a finished call's future is dropped");
    c.send(&support::fcgi_request(2, true, "GET", "/stuck", b""));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 1);
    c.abort(2);
    let r = c.responses(&[2]);
    assert!(r[&2].end.is_some(), "the aborted request is ended");
    let deadline = Instant::now() + Duration::from_secs(5);
    while dropped.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the service's future was not dropped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
