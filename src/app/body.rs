//! The request body a handler reads: empty, complete, or streamed from the connection with
//! bounded buffering (the connection stops reading while the handler does not consume).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The body stream will never complete: the request was aborted or the connection lost.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("request body incomplete: the request was aborted or the connection lost")]
pub struct BodyError;

/// Where a streamed body comes from (implemented by the runtime's connection driver).
pub trait BodySource {
    /// The next chunk, `None` at the end, or an error when the body can never complete.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>>;
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Box<dyn BodySource>),
}

/// A request body (`http-body` 1.x).
pub struct Body {
    kind: Kind,
    remaining: Option<u64>,
    filter_data: Option<Box<Body>>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl Body {
    /// No bytes.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
            remaining: Some(0),
            filter_data: None,
        }
    }

    /// These bytes.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let remaining = Some(data.len() as u64);
        Self {
            kind: Kind::Full(Some(data).filter(|d| !d.is_empty())),
            remaining,
            filter_data: None,
        }
    }

    /// Bytes pulled from `source`; `length` is the declared length, if known.
    pub fn stream(source: impl BodySource + 'static, length: Option<u64>) -> Self {
        Self {
            kind: Kind::Stream(Box::new(source)),
            remaining: length,
            filter_data: None,
        }
    }

    /// The FastCGI FILTER role's DATA stream (the file to filter), once. Read the body first:
    /// the web server sends DATA after the end of STDIN.
    pub fn take_filter_data(&mut self) -> Option<Body> {
        self.filter_data.take().map(|b| *b)
    }

    pub(crate) fn set_filter_data(&mut self, data: Body) {
        self.filter_data = Some(Box::new(data));
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let chunk = match &mut this.kind {
            Kind::Full(data) => Poll::Ready(data.take().map(Ok)),
            Kind::Stream(source) => source.poll_chunk(cx),
        };
        if let Poll::Ready(Some(Ok(data))) = &chunk {
            if let Some(r) = &mut this.remaining {
                *r = r.saturating_sub(data.len() as u64);
            }
        }
        chunk.map(|c| c.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
