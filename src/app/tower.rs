//! Any `tower::Service` as a ringgate application (cargo feature `tower`): an axum `Router`,
//! a `tower::ServiceBuilder` stack, a hand-written service.
//!
//! ```ignore
//! let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi\n" }));
//! ringgate::Server::new(settings, ringgate::app::tower::service(app)).run()
//! ```
//!
//! - [`service`] takes a service over `http::Request<`[`SendBody`]`>`, a `Send` request body,
//!   which is what services that require `Send` futures (axum's `Router`) need. The body is
//!   fed from the connection by a task on the worker, one chunk at a time, so the bounded
//!   buffering and the input backpressure of [`Body`] still hold.
//! - [`local_service`] takes a service over `http::Request<`[`Body`]`>` itself, for services
//!   that accept a `!Send` body: no task and no copy in between.
//!
//! Either way the service is cloned once per worker (a [`HandlerFactory`] must be `Send`
//! and `Sync`, a handler need not be), and once more per request, as tower expects; the
//! response body (any `http_body::Body` with `Bytes` data) is streamed out with
//! backpressure. When a request is aborted, the service's future (or the response body) is
//! dropped, which cancels whatever it was awaiting.

use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::mpsc;
use tower_service::Service;

use super::{boxed, Body, BodyError, BoxError, Handler, HandlerFactory, ResponseBody};

/// Makes one [`TowerHandler`] per worker from a service that takes [`SendBody`] requests.
pub fn service<S>(service: S) -> TowerFactory<S, SendBody> {
    TowerFactory {
        service,
        body: PhantomData,
    }
}

/// Makes one [`TowerHandler`] per worker from a service that takes [`Body`] requests.
pub fn local_service<S>(service: S) -> TowerFactory<S, Body> {
    TowerFactory {
        service,
        body: PhantomData,
    }
}

/// A [`HandlerFactory`] that clones a service for each worker. `B` is the request body type
/// the service takes: [`SendBody`] or [`Body`].
#[derive(Clone, Debug)]
pub struct TowerFactory<S, B> {
    service: S,
    body: PhantomData<fn() -> B>,
}

/// One worker's [`Handler`]: its clone of the service.
#[derive(Clone, Debug)]
pub struct TowerHandler<S, B> {
    service: S,
    body: PhantomData<fn() -> B>,
}

/// The request body types a [`TowerHandler`] can hand its service.
pub trait RequestBody: Sized + 'static {
    /// Makes this body from the connection's.
    fn from_body(body: Body) -> Self;
}

impl RequestBody for Body {
    fn from_body(body: Body) -> Self {
        body
    }
}

impl RequestBody for SendBody {
    fn from_body(body: Body) -> Self {
        SendBody::new(body)
    }
}

impl<S, B, RB> HandlerFactory for TowerFactory<S, B>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: RequestBody,
    RB: http_body::Body<Data = Bytes> + 'static,
    RB::Error: Into<BoxError>,
{
    type Handler = TowerHandler<S, B>;

    fn make(&self, _worker: usize) -> Self::Handler {
        TowerHandler {
            service: self.service.clone(),
            body: PhantomData,
        }
    }
}

impl<S, B, RB> Handler for TowerHandler<S, B>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: RequestBody,
    RB: http_body::Body<Data = Bytes> + 'static,
    RB::Error: Into<BoxError>,
{
    async fn call(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        // tower's contract: the clone that was made ready is the one that is called.
        let mut service = self.service.clone();
        poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        let request = request.map(B::from_body);
        let response = service.call(request).await.map_err(Into::into)?;
        Ok(response.map(boxed))
    }
}

/// A `Send` request body: the connection's [`Body`], moved chunk by chunk through a
/// one-slot channel by a task on the worker. The task stops when this body is dropped.
pub struct SendBody {
    chunks: mpsc::Receiver<Result<Bytes, BodyError>>,
    hint: SizeHint,
    done: bool,
    feeder: Option<AbortOnDrop>,
}

impl std::fmt::Debug for SendBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBody")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Aborts the feeding task when the body is dropped (a request aborted, a service that
/// never reads its body).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SendBody {
    /// Wraps `body`; must be called on a ringgate worker (or inside a `LocalSet`), where
    /// the task feeding it runs.
    pub fn new(body: Body) -> Self {
        let hint = body.size_hint();
        if body.is_end_stream() {
            let (_, chunks) = mpsc::channel(1);
            return Self {
                chunks,
                hint,
                done: true,
                feeder: None,
            };
        }
        // One chunk in the channel, one in the feeder's hands: the connection's own bounded
        // buffer does the rest.
        let (tx, chunks) = mpsc::channel(1);
        let task = tokio::task::spawn_local(async move {
            let mut body = std::pin::pin!(body);
            loop {
                let frame = poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
                let chunk = match frame {
                    None => return,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => Ok(data),
                        Err(_) => continue, // Request bodies carry no trailers here.
                    },
                    Some(Err(e)) => Err(e),
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Self {
            chunks,
            hint,
            done: false,
            feeder: Some(AbortOnDrop(task)),
        }
    }
}

impl http_body::Body for SendBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.chunks.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(data))) => {
                let n = data.len() as u64;
                self.hint = match self.hint.exact() {
                    Some(exact) => SizeHint::with_exact(exact.saturating_sub(n)),
                    None => SizeHint::default(),
                };
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                self.feeder = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}
