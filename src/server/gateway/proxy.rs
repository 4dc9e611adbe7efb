//! The reverse proxy (`UPSTREAM_URL` set): every request that is not keygate's own
//! (`/_keygate/…`) goes to the upstream after the rules, or nowhere.
//!
//! Forwarded: the method, the normalised path and the query, the headers by one policy
//! ([`super::headers`]) — without hop-by-hop ones, without the client's `X-Auth-*`
//! (already gone) and routing overrides, with `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and the identity headers; `Authorization`
//! and cookies pass unchanged; `X-Request-Id` is the request's id, and with span export
//! on, `traceparent` names keygate's `upstream` span (else the client's passes as it
//! came) — and the body streamed. A WebSocket handshake is such a request too
//! ([`ws`]). The upstream's status, headers (without hop-by-hop ones) and body come
//! back as they are, streamed. Each worker has its own client with a keep-alive pool.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodyStream, SizedStream};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::Stream;
use tracing::Instrument;
use tracing::field::Empty;

use super::headers::{HopByHop, forward_headers};
use super::normalize::normalize;
use super::sockets::Sockets;
use super::{Gateway, GatewayError, send_error, ws};
use crate::AuthUser;
use crate::server::metrics::Metrics;
use crate::server::telemetry;

/// One worker's line to the upstream.
pub struct Upstream {
    origin: String,
    client: awc::Client,
    timeout: Duration,
    max_body_bytes: u64,
    /// Whether keygate answers CORS: then the upstream's `Access-Control-*` headers are
    /// dropped and keygate's own replace them.
    owns_cors: bool,
    metrics: Metrics,
    tunnels: ws::Tunnels,
    sockets: Sockets,
    ws_max_age: Option<Duration>,
}

impl Upstream {
    /// A client for `origin` on the current worker (awc clients stay on their thread).
    pub fn new(
        origin: &str,
        timeout: Duration,
        max_body_bytes: u64,
        owns_cors: bool,
        metrics: Metrics,
        sockets: Sockets,
        ws_max_age: Option<Duration>,
    ) -> Upstream {
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(CONNECT_TIMEOUT)
                    .limit(256)
                    .conn_keep_alive(Duration::from_secs(30))
                    .conn_lifetime(Duration::from_secs(300)),
            )
            .disable_redirects()
            .no_default_headers()
            .timeout(timeout)
            .finish();
        Upstream {
            origin: origin.to_string(),
            client,
            timeout,
            max_body_bytes,
            owns_cors,
            metrics,
            tunnels: ws::Tunnels::new(CONNECT_TIMEOUT),
            sockets,
            ws_max_age,
        }
    }
}

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with a request body on its way to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    /// Past `GATEWAY_MAX_BODY_BYTES`.
    TooLarge,
    /// The client's framing broke (or the client went away mid-body).
    Broken,
}

/// The request body, cut off (with an error) past the limit; `fault` records why the
/// body ended early, so that the client's fault is never reported as the upstream's.
struct Checked<S> {
    inner: S,
    seen: u64,
    max: u64,
    fault: Rc<Cell<Option<BodyFault>>>,
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for Checked<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.max {
                    self.fault.set(Some(BodyFault::TooLarge));
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.fault.set(Some(BodyFault::Broken));
                Poll::Ready(Some(Err(e)))
            }
            other => other,
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Proxies one request.
pub async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
    upstream: web::Data<Upstream>,
) -> Result<HttpResponse, GatewayError> {
    ws::check_method(&req, req.method().as_str())?;
    let path = normalize(req.path())?;
    let user = gateway.decide(&req, req.method().as_str(), &path).await?;
    let signed = gateway.signed_identity(user.as_ref())?;
    let target = match req.query_string() {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let mut url = String::with_capacity(upstream.origin.len() + target.len());
    url.push_str(&upstream.origin);
    url.push_str(&target);
    if ws::tunnels(&req) {
        let mut headers = HeaderMap::with_capacity(req.headers().len() + 8);
        forward_headers(
            &req,
            user.as_ref(),
            signed,
            gateway.forward_claims,
            &mut headers,
        );
        let started = Instant::now();
        let register = || {
            upstream.sockets.register(
                user.as_ref().and_then(AuthUser::session_id),
                user.as_ref().map(AuthUser::user_id),
            )
        };
        let answer = ws::tunnel(
            payload,
            &upstream.tunnels,
            &url,
            headers,
            upstream.timeout,
            register,
            upstream.ws_max_age,
        )
        .await;
        let status = answer.as_ref().ok().map(|(_, status)| *status);
        upstream
            .metrics
            .upstream_request(status, started.elapsed().as_secs_f64());
        return answer.map(|(response, _)| response);
    }
    let declared = content_length(req.headers());
    if declared.is_some_and(|len| len > upstream.max_body_bytes) {
        return Err(GatewayError::PayloadTooLarge);
    }

    let mut forwarded = upstream
        .client
        .request(req.method().clone(), url)
        .no_decompress()
        .timeout(upstream.timeout);
    // Headers go into the request's map directly: the builder methods move the whole
    // request once per header.
    forward_headers(
        &req,
        user.as_ref(),
        signed,
        gateway.forward_claims,
        forwarded.headers_mut(),
    );
    // The upstream span exists to be exported; without export it would only cost the
    // subscriber a span per proxied request.
    let span = if telemetry::active() {
        tracing::info_span!(
            "upstream",
            otel.kind = "client",
            http.method = %req.method(),
            http.status_code = Empty,
        )
    } else {
        tracing::Span::none()
    };
    if let Some(trace) = span.in_scope(telemetry::propagation_headers) {
        for (name, value) in trace {
            forwarded = forwarded.insert_header((name, value));
        }
    }

    let fault = Rc::new(Cell::new(None));
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let body = Checked {
        inner: payload,
        seen: 0,
        max: upstream.max_body_bytes,
        fault: fault.clone(),
    };
    let started = Instant::now();
    let sent = match (declared, chunked) {
        (Some(len), _) if len > 0 => {
            forwarded
                .send_body(SizedStream::new(len, body))
                .instrument(span.clone())
                .await
        }
        (_, true) => forwarded.send_stream(body).instrument(span.clone()).await,
        _ => forwarded.send().instrument(span.clone()).await,
    };
    let response = match sent {
        Ok(response) => response,
        // A body the client broke or made too large is the client's fault, not an
        // upstream error: neither the answer nor the metric blames the upstream.
        Err(_) if fault.get() == Some(BodyFault::TooLarge) => {
            return Err(GatewayError::PayloadTooLarge);
        }
        Err(_) if fault.get() == Some(BodyFault::Broken) => return Err(GatewayError::InvalidBody),
        Err(e) => {
            upstream
                .metrics
                .upstream_request(None, started.elapsed().as_secs_f64());
            return Err(send_error(e));
        }
    };
    span.record("http.status_code", response.status().as_u16());
    upstream.metrics.upstream_request(
        Some(response.status().as_u16()),
        started.elapsed().as_secs_f64(),
    );
    Ok(relay(&req, response, upstream.owns_cors))
}

/// The upstream's answer, as the client's response.
fn relay(
    req: &HttpRequest,
    response: awc::ClientResponse<
        impl Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
    >,
    owns_cors: bool,
) -> HttpResponse {
    let status = response.status();
    let mut out = HttpResponse::build(status);
    let skip = HopByHop::of(response.headers());
    for (name, value) in response.headers() {
        let theirs = owns_cors && name.as_str().starts_with("access-control-");
        if name != header::CONTENT_LENGTH && !skip.contains(name) && !theirs {
            out.append_header((name.clone(), value.clone()));
        }
    }
    let no_body = req.method() == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if no_body {
        if let Some(len) = response.headers().get(header::CONTENT_LENGTH).cloned() {
            out.insert_header((header::CONTENT_LENGTH, len));
        }
        return out.finish();
    }
    match content_length(response.headers()) {
        Some(len) => out.no_chunking(len).body(SizedStream::new(len, response)),
        None => out.body(BodyStream::new(response)),
    }
}
