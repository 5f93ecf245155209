//! FastCGI record framing: the 8-byte header, an incremental decoder that skips any padding,
//! and encoders that pad output to 8-byte alignment and split long streams into records of
//! at most [`MAX_CONTENT_LEN`] bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::proto::vars;

/// The only protocol version FastCGI defines.
pub const VERSION_1: u8 = 1;
/// Size of a record header on the wire.
pub const HEADER_LEN: usize = 8;
/// Largest content a single record can carry (the length field is a `u16`).
pub const MAX_CONTENT_LEN: usize = u16::MAX as usize;
/// `BEGIN_REQUEST` flag: keep the connection open after this request.
pub const FLAG_KEEP_CONN: u8 = 1;

/// A record type (`type` byte of the header). Unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RecordType(pub u8);

impl RecordType {
    /// Starts a request (application record).
    pub const BEGIN_REQUEST: Self = Self(1);
    /// The web server aborts a request.
    pub const ABORT_REQUEST: Self = Self(2);
    /// The application ends a request.
    pub const END_REQUEST: Self = Self(3);
    /// Name-value pairs of the request's CGI variables (stream).
    pub const PARAMS: Self = Self(4);
    /// Request body (stream).
    pub const STDIN: Self = Self(5);
    /// Response (stream).
    pub const STDOUT: Self = Self(6);
    /// Error output (stream).
    pub const STDERR: Self = Self(7);
    /// FILTER role: the file to filter (stream).
    pub const DATA: Self = Self(8);
    /// Management query for the application's limits.
    pub const GET_VALUES: Self = Self(9);
    /// Answer to [`Self::GET_VALUES`].
    pub const GET_VALUES_RESULT: Self = Self(10);
    /// Answer to a management record of a type the application does not know.
    pub const UNKNOWN_TYPE: Self = Self(11);
}

/// FastCGI role requested by `BEGIN_REQUEST`. Unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Role(pub u16);

impl Role {
    /// Answer a request (the usual role).
    pub const RESPONDER: Self = Self(1);
    /// Decide whether a request is allowed (200 allows).
    pub const AUTHORIZER: Self = Self(2);
    /// Filter the `DATA` stream into the response.
    pub const FILTER: Self = Self(3);

    /// Whether this is one of the three roles FastCGI 1.0 defines.
    pub fn is_known(self) -> bool {
        matches!(self, Self::RESPONDER | Self::AUTHORIZER | Self::FILTER)
    }
}

impl Default for Role {
    /// [`Role::RESPONDER`], the usual role (and SCGI's and CGI's only one).
    fn default() -> Self {
        Self::RESPONDER
    }
}

/// `protocolStatus` of `END_REQUEST`. Unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ProtocolStatus(pub u8);

impl ProtocolStatus {
    /// Normal end of a request.
    pub const REQUEST_COMPLETE: Self = Self(0);
    /// Refused: this application does not multiplex connections.
    pub const CANT_MPX_CONN: Self = Self(1);
    /// Refused: out of some resource (connections, requests).
    pub const OVERLOADED: Self = Self(2);
    /// Refused: the requested role is unknown.
    pub const UNKNOWN_ROLE: Self = Self(3);
}

/// A decoded record header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RecordHeader {
    /// Protocol version (must be [`VERSION_1`]).
    pub version: u8,
    /// Record type.
    pub record_type: RecordType,
    /// Request id (0 for management records).
    pub request_id: u16,
    /// Content length in bytes.
    pub content_length: u16,
    /// Padding length in bytes, skipped by the decoder.
    pub padding_length: u8,
}

impl RecordHeader {
    /// Parses the 8 header bytes. Never fails: validation is the decoder's job.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            version: b[0],
            record_type: RecordType(b[1]),
            request_id: u16::from_be_bytes([b[2], b[3]]),
            content_length: u16::from_be_bytes([b[4], b[5]]),
            padding_length: b[6],
        }
    }

    /// The 8 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [id_hi, id_lo] = self.request_id.to_be_bytes();
        let [len_hi, len_lo] = self.content_length.to_be_bytes();
        [
            self.version,
            self.record_type.0,
            id_hi,
            id_lo,
            len_hi,
            len_lo,
            self.padding_length,
            0,
        ]
    }

    /// Writes the 8 header bytes.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.to_bytes());
    }
}

/// One whole record, content without padding.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// Record type.
    pub record_type: RecordType,
    /// Request id (0 for management records).
    pub request_id: u16,
    /// Content, padding removed.
    pub content: Bytes,
}

/// The peer sent something that is not a FastCGI record stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RecordError {
    /// The header's version byte is not 1.
    #[error("unsupported FastCGI version {0}")]
    BadVersion(u8),
}

/// Incremental record decoder over a buffer the caller owns and appends to.
///
/// Call [`RecordDecoder::decode`] after each read until it returns `Ok(None)`; the decoder
/// never rescans bytes it has consumed and buffers at most one record (65535 + 255 + 8 bytes).
#[derive(Debug, Default)]
pub struct RecordDecoder {
    /// Padding of the last record still to skip (it may arrive in a later read).
    skip: usize,
}

impl RecordDecoder {
    /// A decoder at a record boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one whole record off the front of `buf`, or `Ok(None)` if more bytes are needed.
    /// Padding is consumed even when it arrives after the record's content.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Record>, RecordError> {
        let Some(header) = self.peek(buf)? else {
            return Ok(None);
        };
        Ok(Some(Record {
            record_type: header.record_type,
            request_id: header.request_id,
            content: self.take(buf, &header),
        }))
    }

    /// The header of the next record once its header and content are all in `buf` (its
    /// padding need not be), leaving the record where it is: its content is
    /// `buf[HEADER_LEN..][..content_length]`. Then call [`Self::consume`] or [`Self::take`]
    /// with this header before anything else changes `buf`. Lets a caller read a record it
    /// needs no copy of without splitting a shared [`Bytes`] off the buffer.
    pub fn peek(&mut self, buf: &mut BytesMut) -> Result<Option<RecordHeader>, RecordError> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = RecordHeader::parse(head);
        if header.version != VERSION_1 {
            return Err(RecordError::BadVersion(header.version));
        }
        let content_len = usize::from(header.content_length);
        if buf.len() < HEADER_LEN + content_len {
            // Room for the rest of the record, padding included, in one allocation of its
            // size: the content split off it later (PARAMS, STDIN) holds no more than that.
            let whole = HEADER_LEN + content_len + usize::from(header.padding_length);
            reserve_exact(buf, whole - buf.len());
            return Ok(None);
        }
        Ok(Some(header))
    }

    /// Removes the record [`Self::peek`] returned `header` for from the front of `buf`, with
    /// its padding as far as it is there (the rest is skipped when it arrives).
    pub fn consume(&mut self, buf: &mut BytesMut, header: &RecordHeader) {
        buf.advance(HEADER_LEN + usize::from(header.content_length));
        self.skip_padding(buf, header);
    }

    /// Like [`Self::consume`], returning the content as a [`Bytes`] that shares `buf`'s
    /// allocation (empty content shares nothing).
    pub fn take(&mut self, buf: &mut BytesMut, header: &RecordHeader) -> Bytes {
        self.take_with(buf, header, |buf, len| {
            if len == 0 {
                Bytes::new()
            } else {
                buf.split_to(len).freeze()
            }
        })
    }

    /// Like [`Self::take`], for a PARAMS record whose content becomes a variables block: it
    /// is copied instead of shared when `buf` is much larger ([`vars::split_block`]).
    pub(crate) fn take_block(&mut self, buf: &mut BytesMut, header: &RecordHeader) -> Bytes {
        self.take_with(buf, header, vars::split_block)
    }

    fn take_with(
        &mut self,
        buf: &mut BytesMut,
        header: &RecordHeader,
        split: impl FnOnce(&mut BytesMut, usize) -> Bytes,
    ) -> Bytes {
        buf.advance(HEADER_LEN);
        let content = split(buf, usize::from(header.content_length));
        self.skip_padding(buf, header);
        content
    }

    fn skip_padding(&mut self, buf: &mut BytesMut, header: &RecordHeader) {
        let pad = usize::from(header.padding_length);
        let n = pad.min(buf.len());
        buf.advance(n);
        self.skip = pad - n;
    }
}

/// Makes room for `additional` more bytes in `buf`; when it must grow, into a new allocation
/// of exactly the size needed, where `BytesMut::reserve` at least doubles it. An input buffer
/// grows only for a record that straddles reads (and [`RecordDecoder::peek`] makes room for
/// the whole record at once), so a record's bytes are copied at most twice, and a record split
/// off such a buffer keeps alive about its own size, not twice that.
pub fn reserve_exact(buf: &mut BytesMut, additional: usize) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let mut grown = BytesMut::with_capacity(buf.len() + additional);
    grown.extend_from_slice(buf);
    *buf = grown;
}

/// Padding that brings `len` up to a multiple of 8.
pub fn padding_for(len: usize) -> u8 {
    // The result is in 0..=7, so the cast cannot truncate.
    ((8 - len % 8) % 8) as u8
}

/// Writes one record with `content` (at most [`MAX_CONTENT_LEN`] bytes) padded to 8 bytes.
///
/// # Panics
/// If `content` is longer than [`MAX_CONTENT_LEN`]: that is a caller bug, never peer input.
pub fn encode_record(out: &mut BytesMut, record_type: RecordType, request_id: u16, content: &[u8]) {
    let content_length = u16::try_from(content.len()).expect("record content over 65535 bytes");
    let padding_length = padding_for(content.len());
    out.reserve(HEADER_LEN + content.len() + usize::from(padding_length));
    RecordHeader {
        version: VERSION_1,
        record_type,
        request_id,
        content_length,
        padding_length,
    }
    .encode(out);
    out.put_slice(content);
    out.put_bytes(0, usize::from(padding_length));
}

/// The content of each record a long stream is split into: 65528, the largest multiple of 8
/// that fits, keeps those records 8-byte aligned without padding.
const MAX_STREAM_CHUNK: usize = MAX_CONTENT_LEN & !7;

/// Writes `data` as stream records of `record_type`, split into records of at most
/// [`MAX_CONTENT_LEN`] bytes. Empty `data` writes nothing: the end of a stream is
/// [`encode_stream_end`].
pub fn encode_stream(out: &mut BytesMut, record_type: RecordType, request_id: u16, data: &[u8]) {
    for chunk in data.chunks(MAX_STREAM_CHUNK) {
        encode_record(out, record_type, request_id, chunk);
    }
}

/// Writes what `write` appends to `out` as stream records of `record_type`, with the same
/// bytes as [`encode_stream`] would write for it, but straight into `out` when it fits in one
/// record (the usual case: no intermediate buffer, no copy). Nothing when `write` appends
/// nothing.
pub fn encode_stream_with(
    out: &mut BytesMut,
    record_type: RecordType,
    request_id: u16,
    write: impl FnOnce(&mut BytesMut),
) {
    let start = out.len();
    out.put_slice(&[0; HEADER_LEN]);
    write(out);
    let len = out.len() - start - HEADER_LEN;
    if len == 0 {
        out.truncate(start);
        return;
    }
    if len > MAX_STREAM_CHUNK {
        // Longer than one record: split as encode_stream does (a rare, large head).
        let content = out.split_off(start + HEADER_LEN);
        out.truncate(start);
        encode_stream(out, record_type, request_id, &content);
        return;
    }
    let padding_length = padding_for(len);
    let header = RecordHeader {
        version: VERSION_1,
        record_type,
        request_id,
        // At most MAX_STREAM_CHUNK: fits.
        content_length: len as u16,
        padding_length,
    };
    out[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
    out.put_bytes(0, usize::from(padding_length));
}

/// Writes the empty record that ends a stream.
pub fn encode_stream_end(out: &mut BytesMut, record_type: RecordType, request_id: u16) {
    encode_record(out, record_type, request_id, &[]);
}

/// Writes `END_REQUEST` with its 8-byte body.
pub fn encode_end_request(
    out: &mut BytesMut,
    request_id: u16,
    app_status: u32,
    status: ProtocolStatus,
) {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = status.0;
    encode_record(out, RecordType::END_REQUEST, request_id, &body);
}

/// Writes `UNKNOWN_TYPE` (management record, id 0) naming the type that was not understood.
pub fn encode_unknown_type(out: &mut BytesMut, unknown: RecordType) {
    let mut body = [0u8; 8];
    body[0] = unknown.0;
    encode_record(out, RecordType::UNKNOWN_TYPE, 0, &body);
}

/// The body of a `BEGIN_REQUEST` record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BeginRequest {
    /// Requested role.
    pub role: Role,
    /// Flags; bit 0 is [`FLAG_KEEP_CONN`].
    pub flags: u8,
}

impl BeginRequest {
    /// Parses the record content; `None` if it is shorter than 8 bytes.
    pub fn parse(content: &[u8]) -> Option<Self> {
        let b = content.first_chunk::<8>()?;
        Some(Self {
            role: Role(u16::from_be_bytes([b[0], b[1]])),
            flags: b[2],
        })
    }

    /// Whether the web server asks the application to keep the connection open.
    pub fn keep_conn(&self) -> bool {
        self.flags & FLAG_KEEP_CONN != 0
    }

    /// Writes a whole `BEGIN_REQUEST` record (used by clients and tests).
    pub fn encode(&self, out: &mut BytesMut, request_id: u16) {
        let mut body = [0u8; 8];
        body[..2].copy_from_slice(&self.role.0.to_be_bytes());
        body[2] = self.flags;
        encode_record(out, RecordType::BEGIN_REQUEST, request_id, &body);
    }
}

/// The body of an `END_REQUEST` record, as a client reads it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EndRequest {
    /// The application's exit status.
    pub app_status: u32,
    /// How the request ended at the protocol level.
    pub protocol_status: ProtocolStatus,
}

impl EndRequest {
    /// Parses the record content; `None` if it is shorter than 8 bytes.
    pub fn parse(content: &[u8]) -> Option<Self> {
        let b = content.first_chunk::<8>()?;
        Some(Self {
            app_status: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            protocol_status: ProtocolStatus(b[4]),
        })
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
