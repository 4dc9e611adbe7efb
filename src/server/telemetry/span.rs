//! The span of one request — the request id, the method, the route pattern and the
//! status, never the query string or a header value, which may hold tokens — and
//! [`RequestLayer`], the middleware that opens it.
//!
//! One middleware does what four did (one `from_fn` each, with a boxed future and a
//! reference-counted handle per request, and `tracing-actix-web`'s logger, which also
//! made a UUID, stored two request extensions and entered the span four times): it
//! removes the client's identity headers, opens the span, times the request for the
//! duration histogram and adds the `resource_metadata` challenge, in that order from the
//! outside in, as the four did.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Ready, ready};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::web::{self, Bytes};
use actix_web::{Error, HttpMessage};
use prometheus::Histogram;
use tracing::Span;
use tracing::field::Empty;

use crate::ResourceMetadata;
use crate::server::gateway::identity;
use crate::server::metrics::{Metrics, method_label, status_label};
use crate::server::request_id::RequestId;
use crate::server::routes::{RouteLabel, oauth};

/// The request span's name; the log filter always lets it through so that every log
/// line about a request carries its `request_id`, whatever `RUST_LOG` says.
pub const NAME: &str = "request";

/// The request span of `request` (see the module), entered by [`RequestLayer`].
pub(crate) fn start(request: &ServiceRequest) -> Span {
    let extensions = request.extensions();
    let id = extensions
        .get::<RequestId>()
        .map(|id| tracing::field::display(id.as_str()));
    let method = tracing::field::display(request.method().as_str());
    // Fields given at creation rather than recorded after: every record makes the log
    // layer format the span's fields again.
    #[cfg(feature = "otlp")]
    if super::export::active() {
        let span = tracing::info_span!(
            "request",
            request_id = id,
            http.method = method,
            http.route = Empty,
            http.status_code = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
        );
        drop(extensions);
        name(&span, request);
        return span;
    }
    // Without export nothing is recorded later: a span of the two fields a log line
    // shows, which spares the empty ones' visit on every request.
    tracing::info_span!("request", request_id = id, http.method = method)
}

/// Names an exported span and continues the caller's trace.
#[cfg(feature = "otlp")]
fn name(span: &Span, request: &ServiceRequest) {
    // Named now: once a child span exists the exported span can no longer be renamed.
    // The pattern is matched here only when spans are exported.
    let route = request.match_pattern();
    let route = route.as_deref().unwrap_or_else(|| {
        request
            .app_data::<RouteLabel>()
            .map_or("unmatched", |label| label.0)
    });
    span.record("otel.name", format!("{} {route}", request.method()));
    span.record("otel.kind", "server");
    super::export::continue_trace(span, request.headers());
}

/// Records the outcome on the span, for exported spans only: a log line after the
/// request's end does not exist, and recording would cost the log layer a reformat.
fn end<B>(span: &Span, outcome: &Result<ServiceResponse<B>, Error>) {
    if !super::active() {
        return;
    }
    let (status, route) = match outcome {
        Ok(response) => (
            response.status(),
            response
                .request()
                .app_data::<RouteLabel>()
                .map_or("unmatched", |label| label.0),
        ),
        Err(error) => (error.as_response_error().status_code(), "unmatched"),
    };
    span.record("http.status_code", status.as_u16());
    span.record("http.route", tracing::field::display(route));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The per-request middleware (see the module). Wrapped inside request ids and CORS,
/// so that a 401 or 403 carries both.
#[derive(Clone)]
pub(crate) struct RequestLayer {
    metrics: Metrics,
    challenge: Option<web::Data<ResourceMetadata>>,
}

/// One worker's [`RequestLayer`], with the histograms it observed kept: finding a
/// histogram by its label values hashes them and takes a lock, where a kept one is
/// found by the addresses of its labels, all `&'static str` of fixed sets, so the
/// map stays as small as the label space.
struct Worker {
    layer: RequestLayer,
    histograms: RefCell<HashMap<LabelKey, Histogram, BuildHasherDefault<AddressHasher>>>,
}

/// The addresses of a histogram's three labels.
#[derive(PartialEq, Eq)]
struct LabelKey([usize; 3]);

impl Hash for LabelKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // One word: the addresses, rotated apart so that no two keys of the fixed
        // sets are likely to meet (equality still compares all three).
        let [method, route, status] = self.0;
        state.write_usize(method ^ route.rotate_left(21) ^ status.rotate_left(42));
    }
}

impl Worker {
    fn observe(&self, method: &'static str, route: &'static str, status: u16, seconds: f64) {
        let status = status_label(status);
        let key = LabelKey([
            method.as_ptr() as usize,
            route.as_ptr() as usize,
            status.as_ptr() as usize,
        ]);
        let mut histograms = self.histograms.borrow_mut();
        histograms
            .entry(key)
            .or_insert_with(|| self.layer.metrics.request_histogram(method, route, status))
            .observe(seconds);
    }
}

/// Hashes a [`LabelKey`]: one multiply.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl RequestLayer {
    /// Observes `keygate_http_request_duration_seconds` in `metrics`; adds
    /// `resource_metadata` to every `401` challenge when `challenge` is given.
    pub(crate) fn new(
        metrics: Metrics,
        challenge: Option<web::Data<ResourceMetadata>>,
    ) -> RequestLayer {
        RequestLayer { metrics, challenge }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + Unpin,
{
    type Response = ServiceResponse<SpanBody<B>>;
    type Error = Error;
    type Transform = RequestLayerService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestLayerService {
            service: Rc::new(service),
            worker: Rc::new(Worker {
                layer: self.clone(),
                histograms: RefCell::default(),
            }),
        }))
    }
}

/// [`RequestLayer`] around one worker's application.
pub(crate) struct RequestLayerService<S> {
    service: Rc<S>,
    worker: Rc<Worker>,
}

impl<S, B> Service<ServiceRequest> for RequestLayerService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + Unpin,
{
    type Response = ServiceResponse<SpanBody<B>>;
    type Error = Error;
    type Future = RequestFuture<S>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        // No handler, guard or upstream ever sees a client's X-Auth-*.
        identity::strip(req.headers_mut());
        let span = start(&req);
        RequestFuture {
            method: method_label(req.method().as_str()),
            state: State::Start(req, self.service.clone()),
            span,
            started: Instant::now(),
            worker: self.worker.clone(),
        }
    }
}

enum State<S: Service<ServiceRequest>> {
    /// Not called yet: the inner service is called at the first poll, so that the call
    /// and the first poll run in one entry of the span rather than two.
    Start(ServiceRequest, Rc<S>),
    Running(S::Future),
    Done,
}

/// The response of [`RequestLayerService`].
pub(crate) struct RequestFuture<S: Service<ServiceRequest>> {
    state: State<S>,
    span: Span,
    started: Instant,
    method: &'static str,
    worker: Rc<Worker>,
}

// Nothing is pinned in place: the inner future is polled only where it is `Unpin`
// (the bound of `poll`), so moving this one moves nothing pinned.
impl<S: Service<ServiceRequest>> Unpin for RequestFuture<S> {}

impl<S, B> Future for RequestFuture<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
    B: MessageBody + Unpin,
{
    type Output = Result<ServiceResponse<SpanBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let entered = this.span.enter();
        if let State::Start(..) = this.state
            && let State::Start(req, service) = std::mem::replace(&mut this.state, State::Done)
        {
            this.state = State::Running(service.call(req));
        }
        // Done: polled after its end, which a caller does not do.
        let State::Running(fut) = &mut this.state else {
            return Poll::Pending;
        };
        let mut outcome = match Pin::new(fut).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        this.state = State::Done;
        if let Ok(response) = &mut outcome {
            if let Some(metadata) = &this.worker.layer.challenge {
                oauth::add_challenge(response, metadata);
            }
            let route = response
                .request()
                .app_data::<RouteLabel>()
                .map_or("unmatched", |label| label.0);
            this.worker.observe(
                this.method,
                route,
                response.status().as_u16(),
                this.started.elapsed().as_secs_f64(),
            );
        }
        end(&this.span, &outcome);
        drop(entered);
        let span = std::mem::replace(&mut this.span, Span::none());
        Poll::Ready(outcome.map(|response| response.map_body(|_, body| SpanBody::new(body, span))))
    }
}

/// A response body that keeps the request span: entered while a streamed body is
/// produced (a proxied response), so that what is logged meanwhile carries the
/// request id; a body already in memory logs nothing and is sent without it.
pub(crate) enum SpanBody<B> {
    /// No body at all (`BodySize::None`).
    Empty,
    /// A body in memory.
    Full(Bytes),
    /// A body produced as it is sent.
    Stream(B, Span),
}

impl<B: MessageBody> SpanBody<B> {
    fn new(body: B, span: Span) -> SpanBody<B> {
        if body.size() == BodySize::None {
            return SpanBody::Empty;
        }
        match body.try_into_bytes() {
            Ok(bytes) => SpanBody::Full(bytes),
            Err(body) => SpanBody::Stream(body, span),
        }
    }
}

impl<B: MessageBody + Unpin> MessageBody for SpanBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        match self {
            SpanBody::Empty => BodySize::None,
            SpanBody::Full(bytes) => BodySize::Sized(bytes.len() as u64),
            SpanBody::Stream(body, _) => body.size(),
        }
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        match self.get_mut() {
            SpanBody::Empty => Poll::Ready(None),
            SpanBody::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            SpanBody::Full(bytes) => Poll::Ready(Some(Ok(std::mem::take(bytes)))),
            SpanBody::Stream(body, span) => span.in_scope(|| Pin::new(body).poll_next(cx)),
        }
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        match self {
            SpanBody::Empty => Ok(Bytes::new()),
            SpanBody::Full(bytes) => Ok(bytes),
            stream => Err(stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::{self, BodyStream};
    use futures_util::stream;

    use super::*;

    #[test]
    fn a_body_keeps_its_size_and_only_a_stream_keeps_the_span() {
        // No body stays no body: a 204 or 304 must not gain a Content-Length.
        let none = SpanBody::new(body::None::new(), Span::none());
        assert!(matches!(none, SpanBody::Empty));
        assert_eq!(none.size(), BodySize::None);
        let full = SpanBody::new(Bytes::from_static(b"{\"status\":\"ok\"}"), Span::none());
        assert_eq!(full.size(), BodySize::Sized(15));
        assert_eq!(
            full.try_into_bytes().ok(),
            Some(Bytes::from_static(b"{\"status\":\"ok\"}"))
        );
        let chunks = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"a"))]);
        let streamed = SpanBody::new(BodyStream::new(chunks), Span::none());
        assert!(matches!(streamed, SpanBody::Stream(..)));
        assert_eq!(streamed.size(), BodySize::Stream);
    }
}
