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
//! back as they are, streamed. Each worker has its own client with a keep-alive pool
//! ([`client`]).

use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BodyStream, MessageBody, SizedStream};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tracing::Instrument;
use tracing::field::Empty;

use super::client::{self, BodyFault, Connector, Outgoing, Pump, UpstreamClient};
use super::headers::{HopByHop, forward_headers};
use super::normalize::normalize;
use super::sockets::Sockets;
use super::{Gateway, GatewayError, client_error, ws};
use crate::AuthUser;
use crate::server::metrics::Metrics;
use crate::server::telemetry;

/// One worker's line to the upstream.
pub struct Upstream {
    origin: String,
    client: UpstreamClient,
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
    /// A client for `origin` on the current worker (its connections are driven by the
    /// worker's runtime), from the connector made once at the start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        origin: &str,
        connector: Connector,
        timeout: Duration,
        max_body_bytes: u64,
        owns_cors: bool,
        metrics: Metrics,
        sockets: Sockets,
        ws_max_age: Option<Duration>,
    ) -> Upstream {
        Upstream {
            origin: origin.to_string(),
            client: client::client(connector),
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

/// The connector of every worker's client, made once: it fails only when TLS cannot be
/// set up for an `https` upstream.
pub(crate) fn connector() -> Result<Connector, rustls::Error> {
    client::connector(CONNECT_TIMEOUT)
}

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

    let mut headers = http::HeaderMap::with_capacity(req.headers().len() + 8);
    forward_headers(
        &req,
        user.as_ref(),
        signed,
        gateway.forward_claims,
        &mut headers,
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
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::try_from(name),
                http::HeaderValue::try_from(value),
            ) {
                headers.insert(name, value);
            }
        }
    }

    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let (body, pump) = match (declared, chunked) {
        (Some(len), _) if len > 0 => {
            let (body, pump) = Outgoing::streamed(payload, Some(len), upstream.max_body_bytes);
            (body, Some(pump))
        }
        (_, true) => {
            let (body, pump) = Outgoing::streamed(payload, None, upstream.max_body_bytes);
            (body, Some(pump))
        }
        _ => (Outgoing::empty(), None),
    };
    let mut forwarded = hyper::Request::builder()
        .method(req.method().as_str())
        .uri(url)
        .body(body)
        .map_err(|e| {
            GatewayError::UpstreamUnavailable(format!("cannot address the upstream: {e}"))
        })?;
    *forwarded.headers_mut() = headers;
    let started = Instant::now();
    let request = tokio::time::timeout(
        upstream.timeout,
        upstream.client.request(forwarded).instrument(span.clone()),
    );
    let response = match send(request, pump).await {
        Ok(response) => response,
        // A body the client broke or made too large is the client's fault, not an
        // upstream error: neither the answer nor the metric blames the upstream.
        Err(Failed::Body(BodyFault::TooLarge)) => return Err(GatewayError::PayloadTooLarge),
        Err(Failed::Body(BodyFault::Broken)) => return Err(GatewayError::InvalidBody),
        Err(failed) => {
            upstream
                .metrics
                .upstream_request(None, started.elapsed().as_secs_f64());
            return Err(match failed {
                Failed::Client(e) => client_error(&e),
                _ => GatewayError::UpstreamTimeout,
            });
        }
    };
    span.record("http.status_code", response.status().as_u16());
    upstream.metrics.upstream_request(
        Some(response.status().as_u16()),
        started.elapsed().as_secs_f64(),
    );
    Ok(relay(&req, response, upstream.owns_cors))
}

/// Why a proxied request got no answer.
enum Failed {
    /// The client's body was at fault.
    Body(BodyFault),
    /// The upstream could not be reached or broke the exchange.
    Client(hyper_util::client::legacy::Error),
    /// No answer within `UPSTREAM_TIMEOUT_SECS`.
    Timeout,
}

/// Sends `request` while `pump` feeds its body. A fault of the client's body ends the
/// exchange at once; an upstream that answers before the body is all read ends the
/// pump.
async fn send<R, S>(request: R, pump: Option<Pump<S>>) -> Result<hyper::Response<Incoming>, Failed>
where
    R: Future<
        Output = Result<
            Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error>,
            tokio::time::error::Elapsed,
        >,
    >,
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let answer = |sent: Result<Result<_, _>, _>| match sent {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(Failed::Client(e)),
        Err(_) => Err(Failed::Timeout),
    };
    let mut request = std::pin::pin!(request);
    if let Some(pump) = pump {
        let mut pump = std::pin::pin!(pump.run());
        tokio::select! {
            biased;
            fault = &mut pump => {
                if let Some(fault) = fault {
                    return Err(Failed::Body(fault));
                }
            }
            sent = &mut request => return answer(sent),
        }
    }
    answer(request.await)
}

/// The upstream's answer, as the client's response.
fn relay(req: &HttpRequest, response: hyper::Response<Incoming>, owns_cors: bool) -> HttpResponse {
    let (parts, incoming) = response.into_parts();
    let Ok(status) = StatusCode::from_u16(parts.status.as_u16()) else {
        let unknown = GatewayError::UpstreamUnavailable(format!("status {}", parts.status));
        return unknown.error_response();
    };
    let mut out = HttpResponse::build(status);
    let skip = HopByHop::listed_in(
        parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .map(http::HeaderValue::as_bytes),
    );
    for (name, value) in &parts.headers {
        let theirs = owns_cors && name.as_str().starts_with("access-control-");
        if name != http::header::CONTENT_LENGTH
            && !skip.contains_str(name.as_str())
            && !theirs
            && let Some(header) = client::from_hyper(name, value)
        {
            out.append_header(header);
        }
    }
    let length = parts.headers.get(http::header::CONTENT_LENGTH);
    let declared = length.and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let no_body = req.method() == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if no_body {
        // The length a GET would have had (RFC 9110 §9.3.2), which actix-web writes only
        // from a body's size: an empty body would be announced as 0.
        if status == StatusCode::NOT_MODIFIED {
            if let Some((name, len)) =
                length.and_then(|v| client::from_hyper(&http::header::CONTENT_LENGTH, v))
            {
                out.insert_header((name, len));
            }
        } else if req.method() == Method::HEAD
            && let Some(len) = declared
        {
            return out.body(HeadLength(len));
        }
        return out.finish();
    }
    let body = BodyDataStream::new(incoming);
    match declared {
        Some(len) => out.no_chunking(len).body(SizedStream::new(len, body)),
        None => out.body(BodyStream::new(body)),
    }
}

/// The body of an answer to `HEAD`: none, with the length of the one a `GET` would get.
struct HeadLength(u64);

impl MessageBody for HeadLength {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}
