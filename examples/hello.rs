//! The smallest served program: the application guide's first handler, with the command line
//! every ringgate program has (metrics only when asked for, with `--metrics ADDR`, so that it
//! can run beside a ringgate).
//!
//! `cargo run --release --example hello -- --fastcgi 127.0.0.1:9000 --workers 2`

use ringgate::app::{full, Body, BoxError, Handler, ResponseBody};
use ringgate::http::{header, Request, Response};
use ringgate::settings::MetricsSetting;
use ringgate::{Program, Settings};

struct Hello;

impl Handler for Hello {
    async fn call(&self, req: Request<Body>) -> Result<Response<ResponseBody>, BoxError> {
        let body = format!("you asked for {}\n", req.uri());
        // Status 200 unless set; the Content-Length comes from the body's size.
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(full(body))?;
        Ok(response)
    }
}

fn main() -> std::process::ExitCode {
    ringgate::init_logging();
    Program::new("hello", env!("CARGO_PKG_VERSION"))
        .about("Answers every request with the URI it asked for")
        .defaults(Settings {
            metrics: MetricsSetting::Off,
            ..Settings::default()
        })
        .serve(|_worker| Hello)
}
