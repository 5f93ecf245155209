//! What the engines report to their driver for counting: small enums with fixed, low-cardinality
//! label values, so metrics can pre-register one handle per value.

use std::time::Duration;

use crate::proto::fastcgi::ProtocolStatus;

/// The wire protocol of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Protocol {
    /// FastCGI 1.0.
    FastCgi,
    /// SCGI.
    Scgi,
    /// CGI/1.1 on stdin/stdout.
    Cgi,
}

impl Protocol {
    /// Every value, for pre-registering one metric handle each.
    pub const ALL: [Self; 3] = [Self::FastCgi, Self::Scgi, Self::Cgi];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FastCgi => "fastcgi",
            Self::Scgi => "scgi",
            Self::Cgi => "cgi",
        }
    }
}

/// Why a request ended without a complete response.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AbortCause {
    /// The web server sent FCGI_ABORT_REQUEST.
    PeerAbort,
    /// The connection failed or the peer can no longer read.
    ConnectionLost,
    /// A params, body, handler or write timeout expired.
    Timeout,
    /// The handler failed or panicked after the response had started.
    HandlerError,
    /// The server shut down before the request finished.
    Shutdown,
}

impl AbortCause {
    /// Every value, for pre-registering one metric handle each.
    pub const ALL: [Self; 5] = [
        Self::PeerAbort,
        Self::ConnectionLost,
        Self::Timeout,
        Self::HandlerError,
        Self::Shutdown,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeerAbort => "peer_abort",
            Self::ConnectionLost => "connection_lost",
            Self::Timeout => "timeout",
            Self::HandlerError => "handler_error",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Which direction of a connection the peer closed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// The peer will send nothing more (we read EOF). Not an abort.
    Read,
    /// The peer can no longer receive (a send failed). Aborts every request.
    Write,
}

impl Side {
    /// Every value, for pre-registering one metric handle each.
    pub const ALL: [Self; 2] = [Self::Read, Self::Write];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Why a connection was closed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CloseReason {
    /// Responses done and the peer did not ask to keep the connection (or the protocol closes).
    Done,
    /// The peer closed it.
    PeerClosed,
    /// The peer broke the protocol.
    ProtocolError,
    /// A timeout expired (params, body idle, write, keep-alive idle).
    Timeout,
    /// Reading or writing the socket failed.
    IoError,
    /// The server is shutting down.
    Shutdown,
    /// Over the connection limit.
    Overloaded,
}

impl CloseReason {
    /// Every value, for pre-registering one metric handle each.
    pub const ALL: [Self; 7] = [
        Self::Done,
        Self::PeerClosed,
        Self::ProtocolError,
        Self::Timeout,
        Self::IoError,
        Self::Shutdown,
        Self::Overloaded,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::PeerClosed => "peer_closed",
            Self::ProtocolError => "protocol_error",
            Self::Timeout => "timeout",
            Self::IoError => "io_error",
            Self::Shutdown => "shutdown",
            Self::Overloaded => "overloaded",
        }
    }
}

/// An enum of metric label values with its `ALL` list and its `as_str`.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $label:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, for pre-registering one metric handle each.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The metric label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

label_enum! {
    /// A limit that was hit, named by its config key (`ringgate_limit_hits_total{limit}`).
    Limit {
        /// `[limits] max_params_bytes`.
        MaxParamsBytes = "max_params_bytes",
        /// `[limits] max_params_pairs`.
        MaxParamsPairs = "max_params_pairs",
        /// `[limits] max_scgi_header_bytes`.
        MaxScgiHeaderBytes = "max_scgi_header_bytes",
        /// `[limits] max_headers`.
        MaxHeaders = "max_headers",
        /// `[limits] max_body_buffer_bytes`.
        MaxBodyBufferBytes = "max_body_buffer_bytes",
        /// `[limits] max_requests_per_connection`.
        MaxRequestsPerConnection = "max_requests_per_connection",
        /// `[limits] max_connections`.
        MaxConnections = "max_connections",
        /// `[limits] max_in_flight`.
        MaxInFlight = "max_in_flight",
        /// `[timeouts] params`.
        ParamsTimeout = "params_timeout",
        /// `[timeouts] body_idle`.
        BodyIdleTimeout = "body_idle_timeout",
        /// `[timeouts] handler`.
        HandlerTimeout = "handler_timeout",
        /// `[timeouts] write`.
        WriteTimeout = "write_timeout",
        /// The metrics endpoint's client cap.
        MetricsClients = "metrics_clients",
    }
}

label_enum! {
    /// How a peer broke its protocol (`ringgate_protocol_errors_total{protocol,kind}`).
    ProtocolErrorKind {
        /// A FastCGI record header was invalid (the connection closes).
        BadRecord = "bad_record",
        /// A BEGIN_REQUEST body shorter than 8 bytes.
        ShortBeginRequest = "short_begin_request",
        /// A BEGIN_REQUEST for an id already in flight.
        DuplicateRequestId = "duplicate_request_id",
        /// A record type that a request id cannot carry.
        UnexpectedRecordType = "unexpected_record_type",
        /// A GET_VALUES body that is not name-value pairs.
        BadGetValues = "bad_get_values",
        /// PARAMS after the empty PARAMS record.
        ParamsAfterEnd = "params_after_end",
        /// A name-value pair cut short by the end of PARAMS.
        TruncatedParams = "truncated_params",
        /// Stream bytes after the stream's empty record.
        InputAfterEnd = "input_after_end",
        /// Variables that make no request (bad method, protocol or length).
        BadCgiVariables = "bad_cgi_variables",
        /// A CONTENT_LENGTH that is not a number.
        BadContentLength = "bad_content_length",
        /// An invalid SCGI netstring header.
        BadScgiHeader = "bad_scgi_header",
        /// The connection closed inside an SCGI header.
        TruncatedHeader = "truncated_header",
        /// Body bytes beyond `CONTENT_LENGTH` (dropped; counted once per request).
        DataAfterBody = "data_after_body",
        /// The body's stream ended before `CONTENT_LENGTH` bytes (the application reads a
        /// body error).
        ShortBody = "short_body",
    }
}

/// Something an engine observed that operators count. Every label is an enum with a fixed set
/// of values.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Stat {
    /// A request head was accepted and handed to the application.
    RequestStarted {
        /// Its protocol.
        protocol: Protocol,
    },
    /// A request ended with a complete response.
    RequestFinished {
        /// Its protocol.
        protocol: Protocol,
        /// The response status code.
        status: u16,
        /// From the request head's arrival to the last response byte queued.
        duration: Duration,
    },
    /// The first response byte of a request was queued.
    FirstByte {
        /// Its protocol.
        protocol: Protocol,
        /// From the request head's arrival.
        latency: Duration,
    },
    /// A request was aborted.
    Aborted {
        /// Its protocol.
        protocol: Protocol,
        /// Why.
        cause: AbortCause,
    },
    /// The peer closed one direction of the connection.
    HalfClose {
        /// Its protocol.
        protocol: Protocol,
        /// Which direction.
        side: Side,
    },
    /// A response producer was paused because the send queue was over its high-water mark.
    ProducerStall {
        /// How long it was paused.
        duration: Duration,
    },
    /// The connection stopped reading because request bodies were not being consumed.
    InputStall {
        /// How long reading was paused.
        duration: Duration,
    },
    /// A FastCGI request was refused with END_REQUEST and this protocol status.
    Refused {
        /// OVERLOADED, CANT_MPX_CONN or UNKNOWN_ROLE.
        status: ProtocolStatus,
    },
    /// A GET_VALUES query was answered.
    GetValuesServed,
    /// An UNKNOWN_TYPE record was sent.
    UnknownTypeSent,
    /// The peer broke the protocol.
    ProtocolError {
        /// Its protocol.
        protocol: Protocol,
        /// The fault.
        kind: ProtocolErrorKind,
    },
    /// A configured limit was hit.
    LimitHit {
        /// The limit.
        limit: Limit,
    },
    /// Requests in flight on one connection right after one was added (for a histogram).
    ConnectionConcurrency {
        /// Requests in flight.
        in_flight: usize,
    },
}
