//! parse_request and the variables' on-demand readings (addresses, ports, server name, HTTPS)
//! over random CGI variables (names drawn mostly from the ones they read, so the fuzzer
//! reaches the interesting paths): never panic, and what they accept is consistent.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::cgi::{parse_request, CgiVars};

const NAMES: &[&str] = &[
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_PROTOCOL",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "HTTPS",
    "SERVER_NAME",
    "SERVER_ADDR",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "HTTP_HOST",
    "HTTP_CONTENT_TYPE",
    "HTTP_CONTENT_LENGTH",
    "HTTP_COOKIE",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Http(Vec<u8>),
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_headers: u8,
    vars: Vec<(Name, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    let mut vars = CgiVars::new();
    for (name, value) in input.vars {
        let name = match name {
            Name::Known(i) => Bytes::from_static(NAMES[usize::from(i) % NAMES.len()].as_bytes()),
            Name::Http(rest) => {
                let mut n = b"HTTP_".to_vec();
                n.extend_from_slice(&rest);
                Bytes::from(n)
            }
            Name::Any(n) => Bytes::from(n),
        };
        vars.push(name, Bytes::from(value));
    }
    // The addresses and ports read as std reads them (a bracketed IPv6 address accepted).
    let std_ip = |name: &str| {
        let s = vars.get_str(name)?;
        let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
        s.parse::<std::net::IpAddr>().ok()
    };
    assert_eq!(vars.remote_addr(), std_ip("REMOTE_ADDR"));
    assert_eq!(vars.server_addr(), std_ip("SERVER_ADDR"));
    let std_port = |name: &str| vars.get_str(name)?.parse::<u16>().ok();
    assert_eq!(vars.remote_port(), std_port("REMOTE_PORT"));
    assert_eq!(vars.server_port(), std_port("SERVER_PORT"));
    assert_eq!(
        vars.server_name(),
        vars.get_str("SERVER_NAME").filter(|n| !n.is_empty())
    );
    let _ = vars.secure();
    if let Ok(head) = parse_request(&vars, usize::from(input.max_headers)) {
        let http = vars.iter().filter(|(n, _)| n.starts_with(b"HTTP_")).count();
        assert!(head.headers.len() <= http + 2);
        assert!(head.headers.len() <= usize::from(input.max_headers) + 2);
        if let Some(cl) = head.headers.get(http::header::CONTENT_LENGTH) {
            if vars.get("CONTENT_LENGTH").is_some_and(|v| !v.is_empty()) {
                assert_eq!(
                    cl.to_str().unwrap().parse::<u64>().ok(),
                    head.content_length
                );
            }
        }
        // A URI that was accepted or repaired prints and parses again to itself.
        let printed = head.uri.to_string();
        assert_eq!(printed.parse::<http::Uri>().unwrap(), head.uri);
    }
});
