//! Unit and property tests of [`super`] (nv).

use super::*;

/// A params budget for the tests that need a large one.
const BUDGET: usize = 64 * 1024;

fn pairs(list: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for (n, v) in list {
        encode_pair(&mut out, n, v);
    }
    out.to_vec()
}

fn collect(vars: &CgiVars) -> Vec<(Vec<u8>, Vec<u8>)> {
    vars.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

#[test]
fn length_forms_at_the_edge() {
    let mut out = BytesMut::new();
    encode_pair(&mut out, &[b'n'; 127], &[b'v'; 128]);
    assert_eq!(out[0], 127);
    assert_eq!(&out[1..5], &[0x80, 0, 0, 128]);
    assert_eq!(out.len(), 1 + 4 + 127 + 128);
    assert_eq!(encoded_pair_len(&[b'n'; 127], &[b'v'; 128]), out.len());
    let vars = ParamsDecoder::decode_all(&out, usize::MAX, 10).unwrap();
    assert_eq!(vars.get("n".repeat(127).as_str()), Some(&[b'v'; 128][..]));
}

#[test]
fn every_split_point_including_inside_a_4_byte_length() {
    let long = vec![b'x'; 300];
    let list: Vec<(&[u8], &[u8])> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"HTTP_COOKIE", &long),
        (&long, b""),
        (b"", b""),
        (b"QUERY_STRING", b""),
    ];
    let wire = pairs(&list);
    let want: Vec<_> = list.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
    for a in 0..=wire.len() {
        for b in [
            a,
            (a + 1).min(wire.len()),
            (a + 3).min(wire.len()),
            wire.len(),
        ] {
            let mut d = ParamsDecoder::new(usize::MAX, 100);
            d.push(&wire[..a]).unwrap();
            d.push(&wire[a..b]).unwrap();
            d.push(&wire[b..]).unwrap();
            assert_eq!(collect(&d.finish().unwrap()), want, "split {a}/{b}");
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    let wire = pairs(&[(b"A", &[b'1'; 200]), (&[b'N'; 130], b"v")]);
    let mut d = ParamsDecoder::new(wire.len(), 2);
    for b in &wire {
        d.push(std::slice::from_ref(b)).unwrap();
    }
    let vars = d.finish().unwrap();
    assert_eq!(vars.len(), 2);
    assert_eq!(vars.get("A"), Some(&[b'1'; 200][..]));
}

#[test]
fn a_stream_in_one_shared_chunk_is_kept_without_a_copy() {
    let wire = Bytes::from(pairs(&[(b"REQUEST_METHOD", b"GET"), (b"A", b"1")]));
    let mut d = ParamsDecoder::new(wire.len(), 2);
    d.push_shared(wire.clone()).unwrap();
    d.push_shared(Bytes::new()).unwrap();
    let vars = d.finish().unwrap();
    let method = vars.get("REQUEST_METHOD").unwrap();
    assert_eq!(method, b"GET");
    assert!(wire.as_ptr_range().contains(&method.as_ptr()));
}

#[test]
fn a_partial_pair_allocates_no_index() {
    let wire = pairs(&[(b"NAME", b"value")]);
    let mut d = ParamsDecoder::new(BUDGET, 10);
    d.push_shared(Bytes::copy_from_slice(&wire[..5])).unwrap();
    assert_eq!(d.spans.capacity(), 0);
    d.push(&wire[5..]).unwrap();
    assert_eq!(d.finish().unwrap().get("NAME"), Some(&b"value"[..]));
}

#[test]
fn a_second_chunk_copies_the_shared_first_one() {
    let wire = Bytes::from(pairs(&[(b"NAME", &[b'v'; 300]), (b"B", b"2")]));
    let (first, second) = (wire.slice(..7), wire.slice(7..));
    let mut d = ParamsDecoder::new(wire.len(), 2);
    d.push_shared(first).unwrap();
    d.push_shared(second).unwrap();
    let vars = d.finish().unwrap();
    let value = vars.get("NAME").unwrap();
    assert_eq!(value, &[b'v'; 300][..]);
    assert!(!wire.as_ptr_range().contains(&value.as_ptr()));
    assert_eq!(vars.get("B"), Some(&b"2"[..]));
}

#[test]
fn non_canonical_long_form_of_a_short_length_is_accepted() {
    let wire = [0x80, 0, 0, 1, 0x80, 0, 0, 2, b'A', b'h', b'i'];
    let vars = ParamsDecoder::decode_all(&wire, 100, 10).unwrap();
    assert_eq!(vars.get("A"), Some(&b"hi"[..]));
}

#[test]
fn empty_stream_is_no_vars() {
    let d = ParamsDecoder::new(0, 0);
    assert!(d.finish().unwrap().is_empty());
}

#[test]
fn byte_limit_is_exact() {
    let wire = pairs(&[(b"NAME", b"value"), (b"X", &[b'y'; 200])]);
    assert!(ParamsDecoder::decode_all(&wire, wire.len(), 10).is_ok());
    assert_eq!(
        ParamsDecoder::decode_all(&wire, wire.len() - 1, 10),
        Err(ParamsError::TooLarge {
            limit: wire.len() - 1
        })
    );
}

#[test]
fn byte_limit_counts_length_fields_of_empty_pairs() {
    let wire = pairs(&[(b"", b""), (b"", b"")]);
    assert_eq!(wire.len(), 4);
    assert!(ParamsDecoder::decode_all(&wire, 4, 10).is_ok());
    assert_eq!(
        ParamsDecoder::decode_all(&wire, 3, 10),
        Err(ParamsError::TooLarge { limit: 3 })
    );
}

#[test]
fn huge_declared_length_is_refused_before_buffering() {
    let mut d = ParamsDecoder::new(BUDGET, 10);
    // Name length 0x7fffffff, delivered one byte at a time: refused at its last byte.
    d.push(&[0xff]).unwrap();
    d.push(&[0xff, 0xff]).unwrap();
    assert_eq!(
        d.push(&[0xff]),
        Err(ParamsError::TooLarge { limit: BUDGET })
    );
    assert!(matches!(d.stream, Stream::Empty));
    // Value length alone too large.
    let mut d = ParamsDecoder::new(100, 10);
    assert_eq!(
        d.push(&[1, 0x80, 0, 0, 100]),
        Err(ParamsError::TooLarge { limit: 100 })
    );
    assert!(matches!(d.stream, Stream::Empty));
}

#[test]
fn an_unbounded_limit_is_clamped_to_the_largest_block() {
    // Spans hold 32-bit offsets: a limit past 4 GiB counts as 4 GiB (2^32 - 1 bytes). With
    // 8 length bytes and a name of 2^31 - 1, a value of 2^31 - 8 ends the pair exactly there
    // (declared, not yet sent: accepted), one byte more is refused before anything is
    // buffered.
    let mut d = ParamsDecoder::new(usize::MAX, 10);
    assert_eq!(
        d.push(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf8]),
        Ok(())
    );
    let mut d = ParamsDecoder::new(usize::MAX, 10);
    assert_eq!(
        d.push(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf9]),
        Err(ParamsError::TooLarge {
            limit: u32::MAX as usize
        })
    );
    assert!(matches!(d.stream, Stream::Empty));
}

#[test]
fn declared_lengths_exactly_filling_the_budget_pass() {
    // 1 + 1 + 10 + 20 = 32 bytes.
    let wire = pairs(&[(&[b'n'; 10], &[b'v'; 20])]);
    let mut d = ParamsDecoder::new(32, 1);
    d.push(&wire[..2]).unwrap();
    d.push(&wire[2..]).unwrap();
    assert_eq!(d.finish().unwrap().len(), 1);
    let mut d = ParamsDecoder::new(31, 1);
    assert_eq!(d.push(&wire[..2]), Err(ParamsError::TooLarge { limit: 31 }));
    // A name length that leaves no room for the value's length field.
    let mut d = ParamsDecoder::new(11, 1);
    assert_eq!(d.push(&[10]), Err(ParamsError::TooLarge { limit: 11 }));
}

#[test]
fn pair_limit_is_exact() {
    let wire = pairs(&[(b"A", b"1"), (b"B", b"2"), (b"C", b"3")]);
    assert_eq!(ParamsDecoder::decode_all(&wire, 1000, 3).unwrap().len(), 3);
    assert_eq!(
        ParamsDecoder::decode_all(&wire, 1000, 2),
        Err(ParamsError::TooManyPairs { limit: 2 })
    );
}

#[test]
fn truncated_anywhere_inside_a_pair() {
    let wire = pairs(&[(b"NAME", &[b'v'; 130])]);
    for cut in 1..wire.len() {
        let mut d = ParamsDecoder::new(1000, 10);
        d.push(&wire[..cut]).unwrap();
        assert_eq!(d.finish().unwrap_err(), ParamsError::Truncated, "cut {cut}");
    }
}

#[test]
fn errors_are_sticky() {
    let mut d = ParamsDecoder::new(1000, 0);
    assert_eq!(d.push(&[0, 0]), Err(ParamsError::TooManyPairs { limit: 0 }));
    assert_eq!(d.push(&[]), Err(ParamsError::TooManyPairs { limit: 0 }));
    assert_eq!(
        d.finish().unwrap_err(),
        ParamsError::TooManyPairs { limit: 0 }
    );
}

#[test]
#[should_panic(expected = "0x7fffffff")]
fn encode_refuses_lengths_the_format_cannot_express() {
    let mut out = BytesMut::new();
    put_len(&mut out, MAX_PAIR_LEN + 1);
}

#[test]
fn max_pair_len_encodes() {
    let mut out = BytesMut::new();
    put_len(&mut out, MAX_PAIR_LEN);
    assert_eq!(&out[..], &[0xff, 0xff, 0xff, 0xff]);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..130),
            1 => prop::collection::vec(any::<u8>(), 120..1000),
        ]
    }

    proptest! {
        #[test]
        fn pairs_round_trip_with_any_chunking(
            list in prop::collection::vec((arb_bytes(), arb_bytes()), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
            shared in prop::collection::vec(any::<bool>(), 17),
        ) {
            let mut wire = BytesMut::new();
            for (n, v) in &list {
                encode_pair(&mut wire, n, v);
            }
            let expect_len: usize = list.iter().map(|(n, v)| encoded_pair_len(n, v)).sum();
            prop_assert_eq!(wire.len(), expect_len);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(wire.len());
            // Exactly at both limits: must pass.
            let mut d = ParamsDecoder::new(wire.len(), list.len());
            let wire = wire.freeze();
            let mut start = 0;
            for (end, shared) in cuts.into_iter().zip(shared) {
                if shared {
                    d.push_shared(wire.slice(start..end)).unwrap();
                } else {
                    d.push(&wire[start..end]).unwrap();
                }
                start = end;
            }
            let got = d.finish().unwrap();
            let want: Vec<_> = list.into_iter().collect();
            prop_assert_eq!(collect(&got), want);
        }

        #[test]
        fn one_byte_less_budget_always_fails(
            list in prop::collection::vec((arb_bytes(), arb_bytes()), 1..8),
        ) {
            let mut wire = BytesMut::new();
            for (n, v) in &list {
                encode_pair(&mut wire, n, v);
            }
            prop_assert_eq!(
                ParamsDecoder::decode_all(&wire, wire.len() - 1, list.len()),
                Err(ParamsError::TooLarge { limit: wire.len() - 1 })
            );
        }

        #[test]
        fn arbitrary_input_never_panics(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
            max_bytes in 0usize..2048,
            max_pairs in 0usize..16,
        ) {
            let mut d = ParamsDecoder::new(max_bytes, max_pairs);
            let mut used = 0;
            for c in &chunks {
                if d.push(c).is_err() {
                    return Ok(());
                }
                used += c.len();
            }
            prop_assert!(used <= max_bytes);
            if let Ok(vars) = d.finish() {
                prop_assert!(vars.len() <= max_pairs);
            }
        }
    }
}
