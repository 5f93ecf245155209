//! Unit and property tests of [`super`] (scgi).

use super::*;

/// A netstring around `pairs` as given, without any checks.
fn raw(pairs: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(format!("{}:", pairs.len()).as_bytes());
    b.extend_from_slice(pairs);
    b.extend_from_slice(b",");
    b
}

fn decode(buf: &mut BytesMut) -> Result<Option<ScgiHeader>, ScgiError> {
    ScgiDecoder::new(DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_VARS).decode(buf)
}

fn decode_err(pairs: &[u8]) -> ScgiError {
    decode(&mut raw(pairs)).unwrap_err()
}

#[test]
fn decodes_and_leaves_the_body() {
    let mut buf = BytesMut::new();
    encode_header(
        &mut buf,
        5,
        &[(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/x?y")],
    );
    assert_eq!(
        &buf[..],
        b"61:CONTENT_LENGTH\x005\0SCGI\x001\0REQUEST_METHOD\0POST\0REQUEST_URI\0/x?y\0,"
    );
    buf.extend_from_slice(b"hello");
    let h = decode(&mut buf).unwrap().unwrap();
    assert_eq!(h.content_length, 5);
    assert_eq!(h.vars.len(), 4);
    assert_eq!(h.vars.get("REQUEST_URI"), Some(&b"/x?y"[..]));
    assert_eq!(&buf[..], b"hello");
}

#[test]
fn one_byte_at_a_time_with_a_multi_digit_prefix() {
    let mut wire = BytesMut::new();
    let v = vec![b'v'; 2000];
    encode_header(&mut wire, 0, &[(b"HTTP_COOKIE", &v)]);
    let mut d = ScgiDecoder::new(DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_VARS);
    let mut buf = BytesMut::new();
    let mut got = None;
    for (i, b) in wire.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        match d.decode(&mut buf).unwrap() {
            Some(h) => {
                assert_eq!(i, wire.len() - 1);
                got = Some(h);
            }
            None => assert!(i < wire.len() - 1),
        }
    }
    let h = got.unwrap();
    assert_eq!(h.vars.get("HTTP_COOKIE"), Some(&v[..]));
    assert!(buf.is_empty());
}

#[test]
fn decoder_is_reusable_after_a_header() {
    let mut buf = BytesMut::new();
    encode_header(&mut buf, 1, &[]);
    encode_header(&mut buf, 2, &[]);
    let mut d = ScgiDecoder::new(100, 10);
    assert_eq!(d.decode(&mut buf).unwrap().unwrap().content_length, 1);
    assert_eq!(d.decode(&mut buf).unwrap().unwrap().content_length, 2);
    assert_eq!(d.decode(&mut buf).unwrap().map(|h| h.content_length), None);
}

#[test]
fn bad_length_prefixes() {
    for p in [
        &b":"[..],
        b"a",
        b"01:",
        b"00",
        b"-1:",
        b" 1:",
        b"1 :",
        b"1a",
    ] {
        let mut buf = BytesMut::from(p);
        assert_eq!(decode(&mut buf).unwrap_err(), ScgiError::BadLength, "{p:?}");
    }
    // A lone "0" may still be "0:" ; the empty header then lacks CONTENT_LENGTH.
    let mut buf = BytesMut::from(&b"0"[..]);
    let mut d = ScgiDecoder::new(100, 10);
    assert_eq!(d.decode(&mut buf).unwrap().map(|h| h.content_length), None);
    buf.extend_from_slice(b":,");
    assert_eq!(d.decode(&mut buf), Err(ScgiError::MissingContentLength));
}

#[test]
fn length_overflow_is_an_error_not_a_panic() {
    let mut buf = BytesMut::from(&b"99999999999999999999999999:"[..]);
    // The limit is clamped to the largest variables block (4 GiB): the length passes it long
    // before it could overflow.
    let mut d = ScgiDecoder::new(usize::MAX, 10);
    assert_eq!(
        d.decode(&mut buf),
        Err(ScgiError::TooLarge {
            limit: u32::MAX as usize
        })
    );
}

#[test]
fn header_size_limit_is_exact_and_checked_before_buffering() {
    let mut wire = BytesMut::new();
    encode_header(&mut wire, 0, &[(b"X", b"y")]);
    let len: usize = std::str::from_utf8(&wire[..2]).unwrap().parse().unwrap();
    let mut buf = wire.clone();
    assert!(ScgiDecoder::new(len, 10)
        .decode(&mut buf)
        .unwrap()
        .is_some());
    // Only the prefix has arrived: refused already.
    let mut buf = BytesMut::from(&wire[..2]);
    assert_eq!(
        ScgiDecoder::new(len - 1, 10).decode(&mut buf),
        Err(ScgiError::TooLarge { limit: len - 1 })
    );
    // Digits one at a time: refused at the digit that passes the limit.
    let mut d = ScgiDecoder::new(999, 10);
    let mut buf = BytesMut::new();
    for digit in b"100" {
        buf.extend_from_slice(&[*digit]);
        assert_eq!(d.decode(&mut buf).unwrap().map(|h| h.content_length), None);
    }
    buf.extend_from_slice(b"0");
    assert_eq!(d.decode(&mut buf), Err(ScgiError::TooLarge { limit: 999 }));
}

#[test]
fn missing_comma() {
    let mut buf = raw(b"CONTENT_LENGTH\x000\0SCGI\x001\0");
    let n = buf.len();
    buf[n - 1] = b';';
    assert_eq!(decode(&mut buf), Err(ScgiError::MissingComma));
}

#[test]
fn malformed_pairs() {
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI"),
        ScgiError::Malformed
    );
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI\x001"),
        ScgiError::Malformed
    );
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0\0x\0"),
        ScgiError::Malformed
    );
    assert_eq!(decode_err(b"CONTENT_LENGTH\x000"), ScgiError::Malformed);
}

#[test]
fn content_length_must_be_first_and_decimal() {
    assert_eq!(decode_err(b""), ScgiError::MissingContentLength);
    assert_eq!(
        decode_err(b"SCGI\x001\0CONTENT_LENGTH\x000\0"),
        ScgiError::MissingContentLength
    );
    for v in [
        &b""[..],
        b"1a",
        b"+1",
        b" 1",
        b"-0",
        b"18446744073709551616",
    ] {
        let mut p = b"CONTENT_LENGTH\0".to_vec();
        p.extend_from_slice(v);
        p.extend_from_slice(b"\0SCGI\x001\0");
        assert_eq!(decode_err(&p), ScgiError::BadContentLength, "{v:?}");
    }
    let h = decode(&mut raw(
        b"CONTENT_LENGTH\x0018446744073709551615\0SCGI\x001\0",
    ))
    .unwrap()
    .unwrap();
    assert_eq!(h.content_length, u64::MAX);
}

#[test]
fn scgi_must_be_1() {
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0"),
        ScgiError::BadScgiVersion
    );
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI\x002\0"),
        ScgiError::BadScgiVersion
    );
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI\0\0"),
        ScgiError::BadScgiVersion
    );
}

#[test]
fn duplicate_names_few_and_many() {
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI\x001\0A\0x\0A\0y\0"),
        ScgiError::DuplicateName("A".into())
    );
    assert_eq!(
        decode_err(b"CONTENT_LENGTH\x000\0SCGI\x001\0SCGI\x001\0"),
        ScgiError::DuplicateName("SCGI".into())
    );
    let mut many: Vec<(Vec<u8>, &[u8])> = (0..40)
        .map(|i| (format!("V{i}").into_bytes(), &b"v"[..]))
        .collect();
    let vars: Vec<(&[u8], &[u8])> = many.iter().map(|(n, v)| (&n[..], *v)).collect();
    let mut ok = BytesMut::new();
    encode_header(&mut ok, 0, &vars);
    assert_eq!(decode(&mut ok).unwrap().unwrap().vars.len(), 42);
    many.push((b"V7".to_vec(), b"again"));
    let vars: Vec<(&[u8], &[u8])> = many.iter().map(|(n, v)| (&n[..], *v)).collect();
    let mut dup = BytesMut::new();
    encode_header(&mut dup, 0, &vars);
    assert_eq!(decode(&mut dup), Err(ScgiError::DuplicateName("V7".into())));
}

#[test]
fn var_limit_is_exact() {
    let mut buf = BytesMut::new();
    encode_header(&mut buf, 0, &[(b"A", b"1"), (b"B", b"2")]);
    let wire = buf.clone();
    assert!(ScgiDecoder::new(100, 4).decode(&mut buf).unwrap().is_some());
    let mut buf = wire;
    assert_eq!(
        ScgiDecoder::new(100, 3).decode(&mut buf),
        Err(ScgiError::TooManyVars { limit: 3 })
    );
}

#[test]
fn errors_are_sticky() {
    let mut d = ScgiDecoder::new(100, 10);
    let mut buf = BytesMut::from(&b"x"[..]);
    assert_eq!(d.decode(&mut buf), Err(ScgiError::BadLength));
    let mut good = BytesMut::new();
    encode_header(&mut good, 0, &[]);
    assert_eq!(d.decode(&mut good), Err(ScgiError::BadLength));
}

#[test]
fn format_decimal_edges() {
    let mut b = [0u8; 20];
    assert_eq!(format_decimal(0, &mut b), b"0");
    assert_eq!(format_decimal(u64::MAX, &mut b), b"18446744073709551615");
}

mod props {
    use proptest::prelude::*;

    use super::*;

    /// Unique names without NUL that are not CONTENT_LENGTH or SCGI, values without NUL.
    fn arb_vars() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        prop::collection::btree_map(
            prop::collection::vec(1u8..=255, 1..24),
            prop::collection::vec(1u8..=255, 0..300),
            0..30,
        )
        .prop_map(|m| {
            m.into_iter()
                .filter(|(n, _)| n != b"CONTENT_LENGTH" && n != b"SCGI")
                .collect()
        })
    }

    fn check(h: &ScgiHeader, content_length: u64, vars: &[(Vec<u8>, Vec<u8>)]) {
        assert_eq!(h.content_length, content_length);
        let got: Vec<_> = h
            .vars
            .iter()
            .skip(2)
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, vars);
        assert_eq!(h.vars.get("SCGI"), Some(&b"1"[..]));
    }

    proptest! {
        #[test]
        fn header_round_trips_one_byte_at_a_time_and_in_chunks(
            content_length in any::<u64>(),
            vars in arb_vars(),
            body in prop::collection::vec(any::<u8>(), 0..40),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let refs: Vec<(&[u8], &[u8])> = vars.iter().map(|(n, v)| (&n[..], &v[..])).collect();
            let mut wire = BytesMut::new();
            encode_header(&mut wire, content_length, &refs);
            let colon = wire.iter().position(|&b| b == b':').unwrap();
            let len: usize = std::str::from_utf8(&wire[..colon]).unwrap().parse().unwrap();
            let header_len = wire.len();
            wire.extend_from_slice(&body);
            let max_vars = vars.len() + 2;

            // One byte at a time, at both limits exactly.
            let mut d = ScgiDecoder::new(len, max_vars);
            let mut buf = BytesMut::new();
            let mut got = None;
            for (i, b) in wire.iter().enumerate() {
                buf.extend_from_slice(&[*b]);
                if let Some(h) = d.decode(&mut buf).unwrap() {
                    prop_assert_eq!(i + 1, header_len);
                    got = Some(h);
                    break;
                }
            }
            check(&got.unwrap(), content_length, &vars);

            // Random chunks; the body stays in the buffer.
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(wire.len());
            let mut d = ScgiDecoder::new(len, max_vars);
            let mut buf = BytesMut::new();
            let mut start = 0;
            let mut got = None;
            for end in cuts {
                buf.extend_from_slice(&wire[start..end]);
                start = end;
                if got.is_none() {
                    got = d.decode(&mut buf).unwrap();
                }
            }
            check(&got.unwrap(), content_length, &vars);
            prop_assert_eq!(&buf[..], &body[..]);

            // One under either limit fails.
            let mut buf = wire.clone();
            prop_assert_eq!(
                ScgiDecoder::new(len - 1, max_vars).decode(&mut buf),
                Err(ScgiError::TooLarge { limit: len - 1 })
            );
            let mut buf = wire.clone();
            prop_assert_eq!(
                ScgiDecoder::new(len, max_vars - 1).decode(&mut buf),
                Err(ScgiError::TooManyVars { limit: max_vars - 1 })
            );
        }

        #[test]
        fn arbitrary_input_never_panics(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..32), 0..8),
        ) {
            let mut d = ScgiDecoder::new(512, 16);
            let mut buf = BytesMut::new();
            for c in &chunks {
                buf.extend_from_slice(c);
                if d.decode(&mut buf).is_err() {
                    break;
                }
            }
        }
    }
}
