//! Unit and property tests of [`super`] (records).

use proptest::prelude::*;

use super::*;

/// A record with any padding length and padding bytes, built by hand.
fn raw_record(t: u8, id: u16, content: &[u8], pad: &[u8]) -> Vec<u8> {
    let mut v = vec![VERSION_1, t];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&u16::try_from(content.len()).unwrap().to_be_bytes());
    v.push(u8::try_from(pad.len()).unwrap());
    v.push(0xee); // reserved: ignored
    v.extend_from_slice(content);
    v.extend_from_slice(pad);
    v
}

/// Feeds `wire` in chunks ending at `cuts` and decodes after each one.
fn decode_chunked(wire: &[u8], cuts: &[usize]) -> Result<(Vec<Record>, usize), RecordError> {
    let mut d = RecordDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let end = end.clamp(start, wire.len());
        buf.extend_from_slice(&wire[start..end]);
        start = end;
        while let Some(r) = d.decode(&mut buf)? {
            out.push(r);
        }
    }
    Ok((out, buf.len() + d.skip))
}

#[test]
fn decodes_with_padding_arriving_later() {
    let wire = raw_record(6, 1, b"hello", &[1, 2, 3]);
    let mut d = RecordDecoder::new();
    let mut buf = BytesMut::from(&wire[..8 + 5 + 1]);
    let r = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(r.record_type, RecordType::STDOUT);
    assert_eq!(r.request_id, 1);
    assert_eq!(&r.content[..], b"hello");
    assert!(buf.is_empty());
    buf.extend_from_slice(&wire[14..]);
    let next = raw_record(5, 2, b"", &[]);
    buf.extend_from_slice(&next);
    let r = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!((r.record_type, r.request_id), (RecordType::STDIN, 2));
    assert!(r.content.is_empty());
    assert!(d.decode(&mut buf).unwrap().is_none());
}

#[test]
fn needs_the_whole_header_and_content() {
    let wire = raw_record(4, 1, b"abc", &[]);
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        assert!(RecordDecoder::new().decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), cut, "nothing consumed before a whole record");
    }
}

#[test]
fn bad_version() {
    let mut wire = raw_record(1, 1, &[0; 8], &[]);
    wire[0] = 2;
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        RecordDecoder::new().decode(&mut buf),
        Err(RecordError::BadVersion(2))
    );
}

#[test]
fn largest_content_and_padding() {
    let content = vec![7u8; MAX_CONTENT_LEN];
    let wire = raw_record(8, u16::MAX, &content, &[0xaa; 255]);
    let (recs, left) = decode_chunked(&wire, &[9, 70_000]).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].content.len(), MAX_CONTENT_LEN);
    assert_eq!(recs[0].request_id, u16::MAX);
    assert_eq!(left, 0);
}

#[test]
fn encoders_pad_to_8() {
    for len in 0..=17 {
        let mut out = BytesMut::new();
        encode_record(&mut out, RecordType::STDOUT, 3, &vec![1; len]);
        assert_eq!(out.len() % 8, 0);
        assert_eq!(usize::from(out[6]), usize::from(padding_for(len)));
        assert_eq!(out.len(), HEADER_LEN + len + usize::from(padding_for(len)));
    }
}

#[test]
fn end_request_unknown_type_and_begin_request() {
    let mut out = BytesMut::new();
    encode_end_request(&mut out, 9, 0x0102_0304, ProtocolStatus::OVERLOADED);
    encode_unknown_type(&mut out, RecordType(200));
    BeginRequest {
        role: Role::FILTER,
        flags: FLAG_KEEP_CONN,
    }
    .encode(&mut out, 4);
    let mut d = RecordDecoder::new();
    let end = d.decode(&mut out).unwrap().unwrap();
    assert_eq!(
        (end.record_type, end.request_id),
        (RecordType::END_REQUEST, 9)
    );
    assert_eq!(
        EndRequest::parse(&end.content),
        Some(EndRequest {
            app_status: 0x0102_0304,
            protocol_status: ProtocolStatus::OVERLOADED
        })
    );
    let unk = d.decode(&mut out).unwrap().unwrap();
    assert_eq!(
        (unk.record_type, unk.request_id),
        (RecordType::UNKNOWN_TYPE, 0)
    );
    assert_eq!(unk.content[0], 200);
    let begin = d.decode(&mut out).unwrap().unwrap();
    let b = BeginRequest::parse(&begin.content).unwrap();
    assert_eq!(b.role, Role::FILTER);
    assert!(b.keep_conn() && b.role.is_known() && !Role(4).is_known());
    assert_eq!(BeginRequest::parse(&begin.content[..7]), None);
    assert_eq!(EndRequest::parse(&[0; 7]), None);
}

#[test]
fn stream_of_exactly_one_record_and_one_more_byte() {
    let chunk = MAX_CONTENT_LEN & !7;
    for (len, records) in [(0, 0), (chunk, 1), (chunk + 1, 2)] {
        let mut out = BytesMut::new();
        encode_stream(&mut out, RecordType::STDOUT, 1, &vec![0; len]);
        let (recs, _) = decode_chunked(&out, &[]).unwrap();
        assert_eq!(recs.len(), records, "len {len}");
    }
}

#[test]
fn peek_then_consume_or_take() {
    let mut wire = raw_record(4, 3, b"params", &[0; 2]);
    wire.extend(raw_record(5, 3, b"body", &[0; 4]));
    wire.extend(raw_record(5, 3, b"", &[]));
    let mut d = RecordDecoder::new();
    // Header and content but not all the padding of the first record.
    let mut buf = BytesMut::from(&wire[..8 + 6 + 1]);
    let h = d.peek(&mut buf).unwrap().unwrap();
    assert_eq!(
        (h.record_type, h.request_id, h.content_length),
        (RecordType::PARAMS, 3, 6)
    );
    assert_eq!(&buf[HEADER_LEN..][..6], b"params");
    // Peeking again finds the same record.
    assert_eq!(d.peek(&mut buf).unwrap(), Some(h));
    d.consume(&mut buf, &h);
    assert!(buf.is_empty());
    buf.extend_from_slice(&wire[8 + 6 + 1..]);
    let h = d.peek(&mut buf).unwrap().unwrap();
    assert_eq!(d.take(&mut buf, &h), "body");
    let h = d.peek(&mut buf).unwrap().unwrap();
    assert!(d.take(&mut buf, &h).is_empty());
    assert!(buf.is_empty());
    assert_eq!(d.peek(&mut buf).unwrap(), None);
}

#[test]
fn encode_stream_with_writes_what_encode_stream_writes() {
    for len in [
        0,
        1,
        7,
        8,
        9,
        1000,
        MAX_STREAM_CHUNK,
        MAX_STREAM_CHUNK + 1,
        200_000,
    ] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut want = BytesMut::from(&b"before"[..]);
        encode_stream(&mut want, RecordType::STDOUT, 7, &data);
        let mut got = BytesMut::from(&b"before"[..]);
        encode_stream_with(&mut got, RecordType::STDOUT, 7, |out| {
            out.extend_from_slice(&data)
        });
        assert_eq!(got, want, "len {len}");
    }
}

fn arb_record() -> impl Strategy<Value = (u8, u16, Vec<u8>, Vec<u8>)> {
    (
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(any::<u8>(), 0..=255),
    )
}

proptest! {
    #[test]
    fn records_round_trip_with_any_padding_and_splits(
        recs in prop::collection::vec(arb_record(), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (t, id, content, pad) in &recs {
            wire.extend_from_slice(&raw_record(*t, *id, content, pad));
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let (got, left) = decode_chunked(&wire, &cuts).unwrap();
        prop_assert_eq!(left, 0);
        prop_assert_eq!(got.len(), recs.len());
        for (g, (t, id, content, _)) in got.iter().zip(&recs) {
            prop_assert_eq!(g.record_type, RecordType(*t));
            prop_assert_eq!(g.request_id, *id);
            prop_assert_eq!(&g.content[..], &content[..]);
        }
    }

    #[test]
    fn encoded_records_round_trip(
        t in any::<u8>(), id in any::<u16>(),
        content in prop::collection::vec(any::<u8>(), 0..2000),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        encode_record(&mut out, RecordType(t), id, &content);
        prop_assert_eq!(out.len() % 8, 0);
        let (got, left) = decode_chunked(&out, &[cut.index(out.len() + 1)]).unwrap();
        prop_assert_eq!(left, 0);
        prop_assert_eq!(got, vec![Record {
            record_type: RecordType(t),
            request_id: id,
            content: Bytes::from(content),
        }]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn long_streams_split_and_reassemble(
        len in 65_536usize..200_000,
        seed in any::<u8>(),
        id in any::<u16>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let mut out = BytesMut::new();
        encode_stream(&mut out, RecordType::STDOUT, id, &data);
        encode_stream_end(&mut out, RecordType::STDOUT, id);
        prop_assert_eq!(out.len() % 8, 0);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(out.len() + 1)).collect();
        cuts.sort_unstable();
        let (recs, left) = decode_chunked(&out, &cuts).unwrap();
        prop_assert_eq!(left, 0);
        prop_assert!(recs.len() >= 3);
        let (end, body) = recs.split_last().unwrap();
        prop_assert!(end.content.is_empty());
        let mut joined = Vec::with_capacity(len);
        for r in body {
            prop_assert_eq!((r.record_type, r.request_id), (RecordType::STDOUT, id));
            prop_assert!(!r.content.is_empty() && r.content.len() <= MAX_CONTENT_LEN);
            joined.extend_from_slice(&r.content);
        }
        prop_assert_eq!(joined, data);
    }
}

#[test]
fn a_record_that_straddles_reads_gets_room_for_exactly_itself() {
    let mut wire = BytesMut::new();
    encode_record(&mut wire, RecordType::PARAMS, 1, &[b'p'; 1001]);
    let whole = wire.len();
    assert_eq!(whole, HEADER_LEN + 1001 + 7);
    let mut buf = BytesMut::from(&wire[..300]);
    let mut d = RecordDecoder::default();
    assert_eq!(d.peek(&mut buf).unwrap(), None);
    assert_eq!(buf.capacity(), whole);
    buf.extend_from_slice(&wire[300..]);
    assert_eq!(buf.capacity(), whole, "the rest and the padding fit");
    let header = d.peek(&mut buf).unwrap().unwrap();
    assert_eq!(d.take(&mut buf, &header), &[b'p'; 1001][..]);
    assert!(buf.is_empty());
}

#[test]
fn reserve_exact_grows_to_the_size_needed_and_keeps_the_bytes() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"kept");
    reserve_exact(&mut buf, 60);
    assert_eq!(buf.capacity(), 64, "room enough: unchanged");
    reserve_exact(&mut buf, 1000);
    assert_eq!(buf.capacity(), 1004);
    assert_eq!(&buf[..], b"kept");
}
