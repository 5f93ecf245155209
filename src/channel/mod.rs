//! Sans-IO connection engines: one per connection kind (FastCGI, SCGI, CGI-on-stdio).
//!
//! An engine takes bytes read from the peer and the current time, and gives back events
//! (a request arrived, a body chunk is readable, a producer may write, a request was
//! aborted, something worth counting happened) and bytes to send. It never does I/O,
//! never reads a clock and never panics on peer input. The runtime (`rt/`) drives it.

pub mod events;

pub use events::{AbortCause, CloseReason, Protocol, Side, Stat};
