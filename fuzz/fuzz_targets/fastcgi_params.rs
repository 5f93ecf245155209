//! ParamsDecoder over arbitrary PARAMS record contents: never panics, honours both limits,
//! and gives the same result however the stream is cut.
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
    data: Vec<u8>,
}

fn run(input: &Input, cuts: &[usize]) -> Result<CgiVars, ParamsError> {
    let data = &input.data;
    let mut d = ParamsDecoder::new(usize::from(input.max_bytes), usize::from(input.max_pairs));
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        let end = end.clamp(start, data.len());
        d.push(&data[start..end])?;
        start = end;
    }
    d.finish()
}

fuzz_target!(|input: Input| {
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    cuts.sort_unstable();
    let split = run(&input, &cuts);
    let whole = run(&input, &[]);
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
