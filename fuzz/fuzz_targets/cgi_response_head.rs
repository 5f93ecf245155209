//! parse_response_head over arbitrary bytes: never panics, never consumes past the limit or
//! the input, the incremental ResponseHeadDecoder fed in pieces agrees with it, and an
//! accepted head encodes and parses back to the same status and headers.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::cgi::{encode_response_head, parse_response_head, ResponseHeadDecoder};

#[derive(Arbitrary, Debug)]
struct Input {
    max_bytes: u16,
    cuts: Vec<u16>,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max_bytes);
    let data = &input.data;
    let one_shot = parse_response_head(data, max);

    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    cuts.sort_unstable();
    let mut d = ResponseHeadDecoder::new(max);
    let mut pieces = Ok(None);
    for end in cuts.into_iter().chain([data.len()]) {
        pieces = d.decode(&data[..end.min(data.len())]);
        if !matches!(pieces, Ok(None)) {
            break;
        }
    }
    let simplify = |r: &Result<Option<(ringgate::proto::cgi::ResponseHead, usize)>, _>| {
        r.clone().map(|o| o.map(|(h, n)| (h.status, h.headers, n)))
    };
    assert_eq!(simplify(&pieces), simplify(&one_shot));

    let Ok(Some((head, consumed))) = one_shot else {
        return;
    };
    assert!(consumed <= max && consumed <= data.len());
    // Every shorter prefix of the head needs more bytes.
    assert!(matches!(
        parse_response_head(&data[..consumed - 1], max),
        Ok(None)
    ));
    let mut out = BytesMut::new();
    encode_response_head(&mut out, head.status, &head.headers);
    let (again, n) = parse_response_head(&out, usize::MAX).unwrap().unwrap();
    assert_eq!(n, out.len());
    assert_eq!(again.status, head.status);
    assert_eq!(again.headers, head.headers);
});
