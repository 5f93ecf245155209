//! ScgiDecoder over arbitrary bytes cut at arbitrary points: never panics, gives the same
//! result however the input is cut, and what it accepts obeys the SCGI rules.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::scgi::{encode_header, ScgiDecoder, ScgiError, ScgiHeader};

#[derive(Arbitrary, Debug)]
struct Input {
    max_header_bytes: u16,
    max_vars: u8,
    cuts: Vec<u16>,
    data: Vec<u8>,
}

fn run(input: &Input, cuts: &[usize]) -> (Result<Option<ScgiHeader>, ScgiError>, BytesMut) {
    let data = &input.data;
    let mut d = ScgiDecoder::new(
        usize::from(input.max_header_bytes),
        usize::from(input.max_vars),
    );
    let mut buf = BytesMut::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        let end = end.clamp(start, data.len());
        buf.extend_from_slice(&data[start..end]);
        start = end;
        match d.decode(&mut buf) {
            Ok(None) => {}
            other => {
                buf.extend_from_slice(&data[start..]);
                return (other, buf);
            }
        }
    }
    (Ok(None), buf)
}

fuzz_target!(|input: Input| {
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    cuts.sort_unstable();
    let (whole, whole_rest) = run(&input, &[]);
    let (split, split_rest) = run(&input, &cuts);
    assert_eq!(split, whole, "result depends on how the input was cut");
    if let Ok(Some(h)) = whole {
        assert_eq!(split_rest, whole_rest);
        assert!(h.vars.len() <= usize::from(input.max_vars));
        assert_eq!(
            h.vars.iter().next().map(|(n, _)| n),
            Some(&b"CONTENT_LENGTH"[..])
        );
        assert_eq!(h.vars.get("SCGI"), Some(&b"1"[..]));
        // Re-encoding gives a header the decoder accepts with the same variables.
        let rest: Vec<(&[u8], &[u8])> = h
            .vars
            .iter()
            .filter(|(n, _)| *n != b"CONTENT_LENGTH" && *n != b"SCGI")
            .collect();
        let mut again = BytesMut::new();
        encode_header(&mut again, h.content_length, &rest);
        let re = ScgiDecoder::new(usize::MAX, usize::MAX)
            .decode(&mut again)
            .unwrap()
            .unwrap();
        assert_eq!(re.content_length, h.content_length);
        assert_eq!(re.vars.len(), h.vars.len());
    }
});
