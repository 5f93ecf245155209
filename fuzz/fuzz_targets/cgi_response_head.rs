//! parse_response_head over arbitrary bytes: never panics, never consumes past the limit or
//! the input, and an accepted head encodes and parses back to the same status and headers.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::cgi::{encode_response_head, parse_response_head};

#[derive(Arbitrary, Debug)]
struct Input {
    max_bytes: u16,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max_bytes);
    let Ok(Some((head, consumed))) = parse_response_head(&input.data, max) else {
        return;
    };
    assert!(consumed <= max && consumed <= input.data.len());
    // Every shorter prefix of the head needs more bytes.
    assert!(matches!(
        parse_response_head(&input.data[..consumed - 1], max),
        Ok(None)
    ));
    let mut out = BytesMut::new();
    encode_response_head(&mut out, head.status, &head.headers);
    let (again, n) = parse_response_head(&out, usize::MAX).unwrap().unwrap();
    assert_eq!(n, out.len());
    assert_eq!(again.status, head.status);
    assert_eq!(again.headers, head.headers);
});
