//! The tests' FastCGI/SCGI servers as a program, to try `ringgate-load` by hand:
//! `cargo run -p ringgate-load --example demo_server -- fastcgi 127.0.0.1:9000 [MODE]`
//! or `... -- scgi 127.0.0.1:9001`. MODE is one of the test modes (`correct` by default,
//! `wrong-id`, `truncate-stdout`, `no-end-request`, `close-mid-response`,
//! `missing-end-request`, `corrupt-body`, `short-body`, `overloaded`, `stall-once`).
//! It serves the demo application's paths: /hello, /echo, /stream, /status/NNN, /slow, /env.

#[path = "../tests/support/mod.rs"]
mod support;

use support::Mode;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: demo_server fastcgi|scgi HOST:PORT [MODE]";
    let (Some(proto), Some(addr)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mode = match args.get(2).map(String::as_str).unwrap_or("correct") {
        "correct" => Mode::Correct,
        "wrong-id" => Mode::WrongId,
        "truncate-stdout" => Mode::TruncateStdout,
        "no-end-request" => Mode::NoEndRequest,
        "close-mid-response" => Mode::CloseMidResponse,
        "missing-end-request" => Mode::MissingEndRequest,
        "corrupt-body" => Mode::CorruptBody,
        "short-body" => Mode::ShortBody,
        "overloaded" => Mode::Overloaded,
        "stall-once" => Mode::StallOnce { nth: 1000, ms: 500 },
        other => {
            eprintln!("unknown mode {other}\n{usage}");
            std::process::exit(2);
        }
    };
    let url = match proto.as_str() {
        "fastcgi" => support::fastcgi_at(addr, mode),
        "scgi" => support::scgi_at(addr),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    eprintln!("serving {url} ({mode:?})");
    loop {
        std::thread::park();
    }
}
