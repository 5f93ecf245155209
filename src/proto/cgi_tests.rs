//! Unit and property tests of [`super`] (cgi).

use super::*;
use bytes::Bytes;

fn vars(list: &[(&str, &str)]) -> CgiVars {
    let mut v = CgiVars::new();
    for (n, val) in list {
        v.push(
            Bytes::copy_from_slice(n.as_bytes()),
            Bytes::copy_from_slice(val.as_bytes()),
        );
    }
    v
}

fn req(list: &[(&str, &str)]) -> Result<RequestHead, CgiError> {
    parse_request(&vars(list), DEFAULT_MAX_HEADERS)
}

fn uri_of(list: &[(&str, &str)]) -> String {
    let mut l = vec![("REQUEST_METHOD", "GET")];
    l.extend_from_slice(list);
    req(&l).unwrap().uri.to_string()
}

/// What nginx sends for `GET /index.php?a=1` over HTTPS.
const NGINX_GET: &[(&str, &str)] = &[
    ("QUERY_STRING", "a=1"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/index.php"),
    ("REQUEST_URI", "/index.php?a=1"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("HTTPS", "on"),
    ("REMOTE_ADDR", "192.0.2.7"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_ADDR", "::1"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "example.org"),
    ("HTTP_HOST", "example.org"),
    ("HTTP_USER_AGENT", "curl/8"),
    ("HTTP_X_FORWARDED_FOR", "a"),
    ("HTTP_X_FORWARDED_FOR", "b"),
];

#[test]
fn nginx_get_request() {
    let h = req(NGINX_GET).unwrap();
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.uri, "/index.php?a=1");
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.content_length, Some(0));
    assert!(h.headers.get(CONTENT_LENGTH).is_none());
    assert!(h.headers.get(CONTENT_TYPE).is_none());
    assert_eq!(h.headers["host"], "example.org");
    assert_eq!(h.headers["user-agent"], "curl/8");
    let xff: Vec<_> = h.headers.get_all("x-forwarded-for").iter().collect();
    assert_eq!(xff, ["a", "b"]);
    assert_eq!(h.headers.len(), 4);
}

#[test]
fn post_with_content_headers() {
    let h = req(&[
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "12"),
        ("HTTP_CONTENT_TYPE", "application/other"),
        ("HTTP_CONTENT_LENGTH", "99"),
    ])
    .unwrap();
    assert_eq!(h.content_length, Some(12));
    assert_eq!(h.headers.get_all(CONTENT_TYPE).iter().count(), 1);
    assert_eq!(h.headers[CONTENT_TYPE], "text/plain");
    assert_eq!(h.headers.get_all(CONTENT_LENGTH).iter().count(), 1);
    assert_eq!(h.headers[CONTENT_LENGTH], "12");
    // Without CONTENT_*, the HTTP_ forms are kept.
    let h = req(&[("REQUEST_METHOD", "POST"), ("HTTP_CONTENT_TYPE", "a/b")]).unwrap();
    assert_eq!(h.headers[CONTENT_TYPE], "a/b");
    assert_eq!(h.content_length, None);
    let h = req(&[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "0")]).unwrap();
    assert_eq!(h.content_length, Some(0));
    assert_eq!(h.headers[CONTENT_LENGTH], "0");
}

#[test]
fn bad_content_length() {
    for v in ["x", "-1", "+1", " 1", "1 ", "18446744073709551616"] {
        assert_eq!(
            req(&[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", v)]).unwrap_err(),
            CgiError::BadContentLength,
            "{v:?}"
        );
    }
}

#[test]
fn method_errors() {
    assert_eq!(req(&[]).unwrap_err(), CgiError::MissingMethod);
    assert_eq!(
        req(&[("REQUEST_METHOD", "")]).unwrap_err(),
        CgiError::BadMethod
    );
    assert_eq!(
        req(&[("REQUEST_METHOD", "G T")]).unwrap_err(),
        CgiError::BadMethod
    );
    assert_eq!(
        req(&[("REQUEST_METHOD", "PURGE")]).unwrap().method.as_str(),
        "PURGE"
    );
}

#[test]
fn protocols() {
    for (p, v) in [
        ("HTTP/1.1", Version::HTTP_11),
        ("HTTP/1.0", Version::HTTP_10),
        ("HTTP/0.9", Version::HTTP_09),
        ("HTTP/2", Version::HTTP_2),
        ("HTTP/2.0", Version::HTTP_2),
        ("HTTP/3", Version::HTTP_3),
    ] {
        let h = req(&[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", p)]).unwrap();
        assert_eq!(h.version, v);
    }
    assert_eq!(
        req(&[("REQUEST_METHOD", "GET")]).unwrap().version,
        Version::HTTP_11
    );
    for p in ["", "HTTP/1.2", "http/1.1", "INCLUDED", "HTTP/3.0"] {
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", p)]).unwrap_err(),
            CgiError::BadProtocol(p.to_owned())
        );
    }
}

#[test]
fn uri_forms() {
    assert_eq!(uri_of(&[("REQUEST_URI", "/a/b?c=d")]), "/a/b?c=d");
    assert_eq!(
        uri_of(&[("REQUEST_URI", "http://example.org:8080/p?q")]),
        "http://example.org:8080/p?q"
    );
    assert_eq!(uri_of(&[("REQUEST_URI", "*")]), "*");
    // Rebuilt: only a non-empty query adds '?'.
    let parts = [("SCRIPT_NAME", "/app.cgi"), ("PATH_INFO", "/x/y")];
    assert_eq!(uri_of(&parts), "/app.cgi/x/y");
    let mut with_q = parts.to_vec();
    with_q.push(("QUERY_STRING", ""));
    assert_eq!(uri_of(&with_q), "/app.cgi/x/y");
    with_q.push(("QUERY_STRING", "ignored: the first one counts"));
    assert_eq!(uri_of(&with_q), "/app.cgi/x/y");
    assert_eq!(
        uri_of(&[
            ("SCRIPT_NAME", "/s"),
            ("PATH_INFO", "/a b?c%d"),
            ("QUERY_STRING", "q=1%202")
        ]),
        "/s/a%20b%3Fc%25d?q=1%202"
    );
    assert_eq!(uri_of(&[("PATH_INFO", "/only")]), "/only");
    assert_eq!(uri_of(&[("QUERY_STRING", "x=1")]), "/?x=1");
    assert_eq!(uri_of(&[("SCRIPT_NAME", "rel")]), "/rel");
    assert_eq!(uri_of(&[("REQUEST_URI", "")]), "/");
    assert_eq!(uri_of(&[]), "/");
}

#[test]
fn invalid_origin_form_uri_is_percent_encoded() {
    assert_eq!(
        uri_of(&[("REQUEST_URI", "/a b/\u{e9}?x=\"y\"")]),
        "/a%20b/%C3%A9?x=%22y%22"
    );
    // Raw bytes that are not UTF-8 either.
    let mut v = vars(&[("REQUEST_METHOD", "GET")]);
    v.push(
        Bytes::from_static(b"REQUEST_URI"),
        Bytes::from_static(b"/\xff\xfe x"),
    );
    let h = parse_request(&v, 10).unwrap();
    assert_eq!(h.uri, "/%FF%FE%20x");
    let mut v = vars(&[("REQUEST_METHOD", "GET")]);
    v.push(
        Bytes::from_static(b"REQUEST_URI"),
        Bytes::from_static(b"/\xff"),
    );
    let h = parse_request(&v, 10).unwrap();
    assert!(h.uri.path().is_ascii(), "{}", h.uri);
    // An existing escape is kept as it is.
    assert_eq!(uri_of(&[("REQUEST_URI", "/a%20 b")]), "/a%20%20b");
}

#[test]
fn invalid_uri_not_in_origin_form_is_refused() {
    for u in ["http://exa mple.org/", "no-slash here", "http://x/a b"] {
        assert_eq!(
            req(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", u)]).unwrap_err(),
            CgiError::BadUri,
            "{u:?}"
        );
    }
}

#[test]
fn bad_headers() {
    assert_eq!(
        req(&[("REQUEST_METHOD", "GET"), ("HTTP_", "x")]).unwrap_err(),
        CgiError::BadHeader("HTTP_".into())
    );
    assert_eq!(
        req(&[("REQUEST_METHOD", "GET"), ("HTTP_A B", "x")]).unwrap_err(),
        CgiError::BadHeader("HTTP_A B".into())
    );
    assert_eq!(
        req(&[("REQUEST_METHOD", "GET"), ("HTTP_X", "a\nb")]).unwrap_err(),
        CgiError::BadHeader("HTTP_X".into())
    );
    assert_eq!(
        req(&[("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", "a\0b")]).unwrap_err(),
        CgiError::BadHeader("CONTENT_TYPE".into())
    );
}

#[test]
fn header_limit_is_exact() {
    let mut list = vec![("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", "a/b")];
    let names: Vec<String> = (0..5).map(|i| format!("HTTP_X_{i}")).collect();
    list.extend(names.iter().map(|n| (n.as_str(), "v")));
    assert_eq!(parse_request(&vars(&list), 5).unwrap().headers.len(), 6);
    assert_eq!(
        parse_request(&vars(&list), 4).unwrap_err(),
        CgiError::TooManyHeaders { limit: 4 }
    );
}

#[test]
fn more_headers_than_a_header_map_holds_is_an_error_not_a_panic() {
    let mut v = vars(&[("REQUEST_METHOD", "GET")]);
    for i in 0..40_000 {
        v.push(Bytes::from(format!("HTTP_X_{i}")), Bytes::from_static(b"v"));
    }
    assert_eq!(
        parse_request(&v, usize::MAX).unwrap_err(),
        CgiError::TooManyHeaders { limit: usize::MAX }
    );
}

#[test]
fn https_and_addresses() {
    for (v, secure) in [
        ("on", true),
        ("ON", true),
        ("1", true),
        ("", false),
        ("off", false),
    ] {
        assert_eq!(vars(&[("HTTPS", v)]).secure(), secure, "{v:?}");
    }
    assert!(!vars(&[]).secure());
    // The first of each name counts.
    let v = vars(
        &[
            NGINX_GET,
            &[
                ("REMOTE_ADDR", "192.0.2.8"),
                ("SERVER_NAME", "other.example"),
            ],
        ]
        .concat(),
    );
    assert!(v.secure());
    assert_eq!(v.server_name(), Some("example.org"));
    assert_eq!(v.server_addr(), Some("::1".parse().unwrap()));
    assert_eq!(v.server_port(), Some(443));
    assert_eq!(v.remote_addr(), Some("192.0.2.7".parse().unwrap()));
    assert_eq!(v.remote_port(), Some(51234));
    let v = vars(&[
        ("REMOTE_ADDR", "unix:"),
        ("REMOTE_PORT", ""),
        ("SERVER_ADDR", "[2001:db8::1]"),
        ("SERVER_PORT", "70000"),
        ("SERVER_NAME", ""),
    ]);
    assert_eq!(v.remote_addr(), None);
    assert_eq!(v.remote_port(), None);
    assert_eq!(v.server_addr(), Some("2001:db8::1".parse().unwrap()));
    assert_eq!(v.server_port(), None);
    assert_eq!(v.server_name(), None);
    let mut v = CgiVars::new();
    v.push(
        Bytes::from_static(b"SERVER_NAME"),
        Bytes::from_static(b"\xff"),
    );
    assert_eq!(v.server_name(), None, "not UTF-8");
}

#[test]
fn response_head_encoding() {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    headers.insert("status", HeaderValue::from_static("500"));
    let mut out = BytesMut::new();
    encode_response_head(&mut out, StatusCode::OK, &headers);
    assert_eq!(
        &out[..],
        b"Status: 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    );
    out.clear();
    encode_response_head(
        &mut out,
        StatusCode::from_u16(299).unwrap(),
        &HeaderMap::new(),
    );
    assert_eq!(&out[..], b"Status: 299 \r\n\r\n");
}

fn parse(s: &[u8]) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
    parse_response_head(s, DEFAULT_MAX_RESPONSE_HEAD_BYTES)
}

#[test]
fn response_head_parsing() {
    let (h, n) = parse(b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nbody")
        .unwrap()
        .unwrap();
    assert_eq!(n, 50);
    assert_eq!(h.status, StatusCode::NOT_FOUND);
    assert_eq!(h.headers.len(), 1);
    assert_eq!(h.headers[CONTENT_TYPE], "text/html");
    let (h, n) = parse(b"content-type:text/plain\nX:  a b \n\nrest")
        .unwrap()
        .unwrap();
    assert_eq!(n, 34);
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.headers["x"], "a b");
    let (h, _) = parse(b"status: 201\r\nX: 1\n\r\n").unwrap().unwrap();
    assert_eq!(h.status, StatusCode::CREATED);
    let (h, _) = parse(b"Location: https://example.org/\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.status, StatusCode::FOUND);
    let (h, _) = parse(b"Location: /local\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.status, StatusCode::OK);
    let (h, _) = parse(b"Status: 301\r\nLocation: https://e/\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.status, StatusCode::MOVED_PERMANENTLY);
}

#[test]
fn response_head_needs_more() {
    for p in [&b""[..], b"Status: 200", b"Status: 200\r\n", b"A: b\r\n\r"] {
        assert!(parse(p).unwrap().is_none(), "{p:?}");
    }
}

#[test]
fn response_head_malformed() {
    for p in [
        &b"\r\n"[..],
        b"\n",
        b"A: 1\r\n continued\r\n\r\n",
        b"A: 1\r\n\tcontinued\r\n\r\n",
        b"no colon\r\n\r\n",
        b": empty name\r\n\r\n",
        b"A : 1\r\n\r\n",
        b"A: x\ry\r\n\r\n",
        b"Status: 20\r\n\r\n",
        b"Status: abc\r\n\r\n",
        b"Status: 2000\r\n\r\n",
        b"Status: 099 x\r\n\r\n",
        b"Status: 200\r\nStatus: 200\r\n\r\n",
    ] {
        assert_eq!(
            parse(p).unwrap_err(),
            ResponseHeadError::Malformed,
            "{:?}",
            String::from_utf8_lossy(p)
        );
    }
}

#[test]
fn response_head_with_more_lines_than_a_header_map_holds() {
    let mut head = Vec::new();
    for i in 0..40_000 {
        head.extend_from_slice(format!("x{i}: v\n").as_bytes());
    }
    head.extend_from_slice(b"\n");
    assert_eq!(
        parse_response_head(&head, usize::MAX).unwrap_err(),
        ResponseHeadError::TooLarge { limit: usize::MAX }
    );
}

#[test]
fn response_head_limit_is_exact() {
    let head = b"Content-Type: a/b\r\n\r\n";
    let n = head.len();
    assert_eq!(parse_response_head(head, n).unwrap().unwrap().1, n);
    assert_eq!(
        parse_response_head(head, n - 1).unwrap_err(),
        ResponseHeadError::TooLarge { limit: n - 1 }
    );
    // Incomplete and shorter than the limit: wait; as long as the limit: refuse.
    assert!(parse_response_head(&head[..n - 1], n).unwrap().is_none());
    assert_eq!(
        parse_response_head(&head[..n - 1], n - 1).unwrap_err(),
        ResponseHeadError::TooLarge { limit: n - 1 }
    );
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn arb_name() -> impl Strategy<Value = HeaderName> {
        "[a-z0-9!#$%&'*+.^_`|~-]{1,20}"
            .prop_filter("Status is the encoder's", |n| n != "status")
            .prop_map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap())
    }

    fn arb_value() -> impl Strategy<Value = HeaderValue> {
        // Visible ASCII and inner spaces/tabs: the parser trims the edges, as HTTP does.
        "([!-~]([ \t!-~]{0,30}[!-~])?)?"
            .prop_map(|v| HeaderValue::from_bytes(v.as_bytes()).unwrap())
    }

    proptest! {
        #[test]
        fn response_head_round_trips(
            code in 100u16..1000,
            list in prop::collection::vec((arb_name(), arb_value()), 0..12),
            body in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            let status = StatusCode::from_u16(code).unwrap();
            let mut headers = HeaderMap::new();
            for (n, v) in list {
                headers.append(n, v);
            }
            let mut out = BytesMut::new();
            encode_response_head(&mut out, status, &headers);
            let head_len = out.len();
            out.extend_from_slice(&body);
            let (head, consumed) = parse_response_head(&out, head_len).unwrap().unwrap();
            prop_assert_eq!(consumed, head_len);
            prop_assert_eq!(head.status, status);
            prop_assert_eq!(head.headers, headers);
            // Any proper prefix needs more bytes.
            for cut in [0, head_len / 2, head_len - 1] {
                prop_assert!(parse_response_head(&out[..cut], head_len).unwrap().is_none());
            }
        }

        #[test]
        fn parse_request_never_panics(
            list in prop::collection::vec(
                (
                    prop_oneof![
                        Just("REQUEST_METHOD".to_owned()),
                        Just("REQUEST_URI".to_owned()),
                        Just("SERVER_PROTOCOL".to_owned()),
                        Just("CONTENT_LENGTH".to_owned()),
                        Just("CONTENT_TYPE".to_owned()),
                        Just("PATH_INFO".to_owned()),
                        Just("QUERY_STRING".to_owned()),
                        "HTTP_[A-Z_ ]{0,6}",
                        "[A-Z_]{1,8}",
                    ],
                    prop::collection::vec(any::<u8>(), 0..24),
                ),
                0..16,
            ),
        ) {
            let mut v = CgiVars::new();
            for (n, val) in list {
                v.push(Bytes::from(n), Bytes::from(val));
            }
            let _ = parse_request(&v, 8);
        }
    }
}

#[test]
fn response_head_decoder_matches_the_one_shot_parser() {
    let inputs: [&[u8]; 6] = [
        b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nbody",
        b"content-type:text/plain\nX:  a b \n\nrest",
        b"A: 1\r\n continued\r\n\r\n",
        b"\r\n",
        b"Location: https://example.org/\n\r\n",
        b"X: 1\r\n\r",
    ];
    for input in inputs {
        for max in [input.len() - 1, input.len(), 1000] {
            let want =
                parse_response_head(input, max).map(|o| o.map(|(h, n)| (h.status, h.headers, n)));
            // Byte by byte, then in uneven pieces.
            for step in [1, 3, 7] {
                let mut d = ResponseHeadDecoder::new(max);
                let mut got = Ok(None);
                let mut end = 0;
                while end < input.len() {
                    end = (end + step).min(input.len());
                    got = d
                        .decode(&input[..end])
                        .map(|o| o.map(|(h, n)| (h.status, h.headers, n)));
                    if !matches!(got, Ok(None)) {
                        break;
                    }
                }
                assert_eq!(
                    got,
                    want,
                    "{:?} max {max} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }
}

#[test]
fn response_head_decoder_limit_is_exact() {
    let head = b"Content-Type: a/b\r\n\r\n";
    let n = head.len();
    let mut d = ResponseHeadDecoder::new(n);
    assert!(d.decode(&head[..n - 1]).unwrap().is_none());
    assert_eq!(d.decode(head).unwrap().unwrap().1, n);
    let mut d = ResponseHeadDecoder::new(n - 1);
    assert!(d.decode(&head[..n - 2]).unwrap().is_none());
    assert_eq!(
        d.decode(&head[..n - 1]).unwrap_err(),
        ResponseHeadError::TooLarge { limit: n - 1 }
    );
}

#[test]
fn nph_status_lines() {
    assert_eq!(parse_nph_status_line(b"HTTP/1.1 200 OK\r").unwrap(), 200);
    assert_eq!(parse_nph_status_line(b"HTTP/1.0 404").unwrap(), 404);
    assert_eq!(
        parse_nph_status_line(b"HTTP/2 204 No Content").unwrap(),
        204
    );
    for bad in [
        &b"HTTP/1.1"[..],
        b"HTTX/1.1 200",
        b"HTTP/1.1 20",
        b"HTTP/x 200",
        b"200 OK",
    ] {
        assert!(parse_nph_status_line(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ports_parse_as_str_parse_does() {
    for p in [
        "",
        "0",
        "80",
        "+80",
        "++80",
        "-80",
        "0080",
        "65535",
        "65536",
        "99999999999999999999",
        " 80",
        "80 ",
        "8a",
        "+",
        "unix:",
    ] {
        assert_eq!(parse_port(p.as_bytes()), p.parse::<u16>().ok(), "{p:?}");
    }
}

#[test]
fn the_ipv4_fast_path_reads_what_std_reads() {
    let cases = [
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "256.0.0.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.04",
        "1..3.4",
        "1.2.3.4.",
        ".1.2.3",
        "1.2.3.1000",
        "+1.2.3.4",
        "1.2.3.-4",
        "1.2.3. 4",
        "",
        "::1",
        "[::1]",
        "::ffff:1.2.3.4",
        "10.0.0.255",
    ];
    for case in cases {
        let std = case
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(case)
            .parse::<IpAddr>()
            .ok();
        assert_eq!(parse_ip(case.as_bytes()), std, "{case:?}");
    }
}

proptest::proptest! {
    #[test]
    fn the_ipv4_fast_path_agrees_with_std(s in "[0-9.]{0,17}") {
        proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
    }
}
