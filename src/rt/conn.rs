//! The per-connection seam: where an accepted connection meets a protocol engine from
//! [`crate::channel`]. The engine driver (read loop, engine events, send queue) plugs in
//! here; until it does, ringgate accepts each connection and closes it at once, so the
//! runtime (listeners, workers, drain) can be run and tested on its own.

use super::accept::Accepted;
use super::serve::ConnContext;

/// Serve one connection. Currently: log it and close it.
pub async fn serve_connection(conn: Accepted, ctx: ConnContext) {
    tracing::debug!(
        worker = ctx.worker,
        listener = %conn.listener.name,
        protocol = conn.listener.protocol.as_str(),
        peer = ?conn.peer,
        stream = ?conn.stream,
        "accepted; closing (no protocol driver attached yet)"
    );
    drop(conn);
}
