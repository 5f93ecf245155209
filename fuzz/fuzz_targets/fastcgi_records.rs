//! RecordDecoder over arbitrary bytes cut at arbitrary points: never panics, never returns
//! more content than it was given, and cutting the input differently changes nothing.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::fastcgi::{Record, RecordDecoder, RecordError};

#[derive(Arbitrary, Debug)]
struct Input {
    cuts: Vec<u16>,
    data: Vec<u8>,
}

/// Decodes `data` fed in pieces ending at `cuts`; the records, the first error, and the bytes
/// still buffered at the end.
fn run(data: &[u8], cuts: &[usize]) -> (Vec<Record>, Option<RecordError>) {
    let mut d = RecordDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        let end = end.clamp(start, data.len());
        buf.extend_from_slice(&data[start..end]);
        start = end;
        loop {
            match d.decode(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: Input| {
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    cuts.sort_unstable();
    let split = run(&input.data, &cuts);
    let whole = run(&input.data, &[]);
    assert_eq!(split, whole, "result depends on how the input was cut");
    let content: usize = whole.0.iter().map(|r| r.content.len()).sum();
    assert!(content + 8 * whole.0.len() <= input.data.len());
});
