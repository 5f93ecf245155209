//! The client side of a FastCGI request: everything a web server writes for one request,
//! encoded in one call. Used by the tests, the benchmarks and `ringgate-load`, so that every
//! client of ringgate's own sends the same bytes.

use bytes::BytesMut;

use super::nv::encode_pair;
use super::record::{encode_stream, encode_stream_end, BeginRequest, RecordType, Role};

/// Appends one whole request to `out`, as a web server sends it: `BEGIN_REQUEST` (with
/// `flags`, e.g. [`FLAG_KEEP_CONN`](super::FLAG_KEEP_CONN)), the `PARAMS` stream (the pairs,
/// in as many records as they need, then the empty record) and the `STDIN` stream (the body,
/// then the empty record). Returns the length of the encoded pairs.
pub fn encode_request<'a>(
    out: &mut BytesMut,
    request_id: u16,
    role: Role,
    flags: u8,
    params: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    body: &[u8],
) -> usize {
    BeginRequest { role, flags }.encode(out, request_id);
    let mut pairs = BytesMut::new();
    for (name, value) in params {
        encode_pair(&mut pairs, name, value);
    }
    encode_stream(out, RecordType::PARAMS, request_id, &pairs);
    encode_stream_end(out, RecordType::PARAMS, request_id);
    encode_stream(out, RecordType::STDIN, request_id, body);
    encode_stream_end(out, RecordType::STDIN, request_id);
    pairs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::fastcgi::{ParamsDecoder, RecordDecoder, FLAG_KEEP_CONN};

    #[test]
    fn a_request_decodes_back() {
        let mut out = BytesMut::new();
        let body = vec![7u8; 70_000];
        let params: [(&[u8], &[u8]); 2] = [(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/x")];
        encode_request(&mut out, 9, Role::RESPONDER, FLAG_KEEP_CONN, params, &body);
        let mut decoder = RecordDecoder::new();
        let mut kinds = Vec::new();
        let mut pairs = ParamsDecoder::new(1 << 16, 16);
        let mut stdin = Vec::new();
        while let Some(r) = decoder.decode(&mut out).unwrap() {
            assert_eq!(r.request_id, 9);
            match r.record_type {
                RecordType::BEGIN_REQUEST => {
                    let b = BeginRequest::parse(&r.content).unwrap();
                    assert_eq!((b.role, b.flags), (Role::RESPONDER, FLAG_KEEP_CONN));
                }
                RecordType::PARAMS => pairs.push(&r.content).unwrap(),
                RecordType::STDIN => stdin.extend_from_slice(&r.content),
                _ => panic!("unexpected record"),
            }
            kinds.push((r.record_type, r.content.is_empty()));
        }
        assert_eq!(stdin, body);
        assert_eq!(kinds.last(), Some(&(RecordType::STDIN, true)));
        let vars = pairs.finish().unwrap();
        assert_eq!(vars.get_str("REQUEST_URI"), Some("/x"));
    }
}
