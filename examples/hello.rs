//! The smallest served program: the README's handler, behind the same command line as the
//! `ringgate` binary.
//!
//! `cargo run --release --example hello -- --fastcgi 127.0.0.1:9000 --workers 2`

use ringgate::app::{text, Body, BoxError, Handler, ResponseBody};

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

fn main() -> Result<(), ringgate::ServerError> {
    let settings = ringgate::Cli::settings_or_exit("hello", env!("CARGO_PKG_VERSION"));
    ringgate::init_logging();
    ringgate::Server::new(settings, |_worker| Hello).run()
}
