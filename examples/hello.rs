//! The smallest served program: the README's handler, behind the same command line as the
//! `ringgate` binary (metrics only when asked for, with `--metrics ADDR`, so that it can run
//! beside a ringgate).
//!
//! `cargo run --release --example hello -- --fastcgi 127.0.0.1:9000 --workers 2`

use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};
use ringgate::settings::MetricsSetting;
use ringgate::{Cli, Server, ServerError, Settings};

struct Hello;

impl Handler for Hello {
    async fn call(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        Ok(text(
            http::StatusCode::OK,
            format!("you asked for {}\n", req.uri()),
        ))
    }
}

fn main() -> Result<(), ServerError> {
    let defaults = Settings {
        metrics: MetricsSetting::Off,
        ..Settings::default()
    };
    let settings = Cli::settings_over_or_exit("hello", env!("CARGO_PKG_VERSION"), defaults);
    ringgate::init_logging();
    Server::new(settings, |_worker| Hello).run()
}
