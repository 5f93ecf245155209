//! ParamsDecoder over arbitrary PARAMS record contents: never panics, honours both limits,
//! and gives the same result however the stream is cut and whichever chunks are pushed as
//! shared `Bytes` (kept without a copy) or as slices (copied).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringgate::proto::cgi::CgiVars;
use ringgate::proto::fastcgi::{encode_pair, ParamsDecoder, ParamsError};

#[derive(Arbitrary, Debug)]
struct Input {
    max_bytes: u16,
    max_pairs: u8,
    cuts: Vec<u16>,
    /// Bit i set: chunk i is pushed with `push_shared`.
    shared: u64,
    data: Vec<u8>,
}

fn run(input: &Input, cuts: &[usize], shared: u64) -> Result<CgiVars, ParamsError> {
    let data = bytes::Bytes::copy_from_slice(&input.data);
    let mut d = ParamsDecoder::new(usize::from(input.max_bytes), usize::from(input.max_pairs));
    let mut start = 0;
    for (i, end) in cuts.iter().copied().chain([data.len()]).enumerate() {
        let end = end.clamp(start, data.len());
        if shared >> (i % 64) & 1 == 1 {
            d.push_shared(data.slice(start..end))?;
        } else {
            d.push(&data[start..end])?;
        }
        start = end;
    }
    d.finish()
}

fuzz_target!(|input: Input| {
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    cuts.sort_unstable();
    let split = run(&input, &cuts, input.shared);
    let whole = run(&input, &[], 0);
    assert_eq!(split, whole, "result depends on how the input was cut");
    if let Ok(vars) = whole {
        assert!(input.data.len() <= usize::from(input.max_bytes));
        assert!(vars.len() <= usize::from(input.max_pairs));
        // Re-encoding what was decoded gives an equivalent stream.
        let mut again = bytes::BytesMut::new();
        for (n, v) in vars.iter() {
            encode_pair(&mut again, n, v);
        }
        let re = ParamsDecoder::decode_all(&again, usize::MAX, usize::MAX).unwrap();
        assert_eq!(re, vars);
    }
});
