//! FastCGI 1.0: records ([`record`]), name-value pairs ([`nv`]) and, for clients, whole
//! requests ([`request`]).
//!
//! Wire values are newtypes with constants so an unknown value stays representable and
//! answerable (an unknown record type gets `UNKNOWN_TYPE`, an unknown role `UNKNOWN_ROLE`).

pub mod nv;
pub mod record;
pub mod request;

pub use nv::{encode_pair, ParamsDecoder, ParamsError};
pub use record::{
    encode_end_request, encode_record, encode_stream, encode_stream_end, encode_stream_with,
    encode_unknown_type, padding_for, reserve_exact, BeginRequest, EndRequest, ProtocolStatus,
    Record, RecordDecoder, RecordError, RecordHeader, RecordType, Role, FLAG_KEEP_CONN, HEADER_LEN,
    MAX_CONTENT_LEN, VERSION_1,
};
pub use request::encode_request;
