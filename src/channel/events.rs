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

/// Something an engine observed that operators count. Label values are `&'static str` from a
/// small fixed set (each producer documents its set).
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
        /// A short fixed name for the fault, e.g. `bad_version`, `bad_netstring`.
        kind: &'static str,
    },
    /// A configured limit was hit.
    LimitHit {
        /// The limit's config key, e.g. `max_params_bytes`.
        limit: &'static str,
    },
    /// Requests in flight on one connection right after one was added (for a histogram).
    ConnectionConcurrency {
        /// Requests in flight.
        in_flight: usize,
    },
}
