//! The reverse proxy (`UPSTREAM_URL` set): every request that is not keygate's own
//! (`/_keygate/…`) goes to the upstream after the rules, or nowhere.
//!
//! Forwarded: the method, the normalised path and the query, the headers by one policy
//! (`forward_headers`) — without hop-by-hop ones, without the client's `X-Auth-*`
//! (already gone) and routing overrides, with `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and the identity headers; `Authorization`
//! and cookies pass unchanged; `X-Request-Id` is the request's id, and with span export
//! on, `traceparent` names keygate's `upstream` span (else the client's passes as it
//! came) — and the body streamed. A WebSocket handshake is such a request too
//! ([`ws`]). The upstream's status, headers (without hop-by-hop ones) and body come
//! back as they are, streamed. Each worker has its own client with a keep-alive pool.

use std::cell::Cell;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodyStream, SizedStream};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use awc::error::{ConnectError, SendRequestError};
use futures_util::Stream;
use tracing::Instrument;
use tracing::field::Empty;

use super::normalize::normalize;
use super::{Gateway, GatewayError, identity, ws};
use crate::AuthUser;
use crate::server::metrics::Metrics;
use crate::server::request_id::{self, RequestId};
use crate::server::telemetry;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1), besides
/// those a `Connection` header names.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

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
}

impl Upstream {
    /// A client for `origin` on the current worker (awc clients stay on their thread).
    pub fn new(
        origin: &str,
        timeout: Duration,
        max_body_bytes: u64,
        owns_cors: bool,
        metrics: Metrics,
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
        }
    }
}

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which headers of a message are hop-by-hop: the fixed list and the names its
/// `Connection` headers list (read once; most messages have none).
pub(super) struct HopByHop {
    listed: Vec<HeaderName>,
}

impl HopByHop {
    pub(super) fn of(headers: &HeaderMap) -> HopByHop {
        let listed = headers
            .get_all(header::CONNECTION)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        HopByHop { listed }
    }

    pub(super) fn contains(&self, name: &HeaderName) -> bool {
        HOP_BY_HOP.contains(&name.as_str()) || self.listed.contains(name)
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// `X-Forwarded-For` with the client's address appended.
fn forwarded_for(req: &HttpRequest) -> String {
    let mut out = String::new();
    for hop in req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        out.push_str(hop);
        out.push_str(", ");
    }
    match req.peer_addr() {
        Some(peer) => push_ip(&mut out, peer.ip()),
        None => {
            let kept = out.len().saturating_sub(2);
            out.truncate(kept);
        }
    }
    out
}

/// Appends `ip` in its usual text form. IPv4 by hand: `Display` goes through the
/// formatter's padding machinery, a visible share of a proxied request's cost.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The scheme the client used. Without `Forwarded` or `X-Forwarded-Proto` headers or an
/// absolute target, that is the listener's; otherwise actix-web's connection info
/// decides, as it does for the rest of the service.
fn scheme(req: &HttpRequest) -> &'static str {
    let headers = req.headers();
    if headers.contains_key(header::FORWARDED)
        || headers.contains_key(&X_FORWARDED_PROTO)
        || req.uri().scheme().is_some()
    {
        return if req.connection_info().scheme() == "https" {
            "https"
        } else {
            "http"
        };
    }
    if req.app_config().secure() {
        "https"
    } else {
        "http"
    }
}

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

/// Client headers the proxy sets itself or never forwards, besides hop-by-hop ones.
fn owned_here(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-request-id"
    ) || identity::is_identity_name(name.as_str())
        || identity::is_routing_override(name.as_str())
}

/// The one header policy of every forwarded request, WebSocket handshakes included:
/// the client's end-to-end headers (without hop-by-hop ones, `X-Auth-*` in any spelling
/// and routing overrides), `X-Forwarded-For` (appended), `X-Forwarded-Proto`,
/// `X-Forwarded-Host`, the identity headers of `user` and the request id, into `out`.
pub(super) fn forward_headers(
    req: &HttpRequest,
    user: Option<&AuthUser>,
    forward_claims: bool,
    out: &mut HeaderMap,
) {
    let skip = HopByHop::of(req.headers());
    for (name, value) in req.headers() {
        if !owned_here(name) && !skip.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    if let Ok(value) = HeaderValue::try_from(forwarded_for(req)) {
        out.insert(X_FORWARDED_FOR, value);
    }
    out.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme(req)));
    if let Some(host) = req.headers().get(header::HOST) {
        out.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Some(user) = user {
        for (name, value) in identity::headers(user, forward_claims) {
            out.insert(name, value);
        }
    }
    if let Some(id) = RequestId::of(req)
        && let Ok(value) = HeaderValue::from_str(id.as_str())
    {
        out.insert(request_id::HEADER, value);
    }
}

/// The gateway's answer to a request that could not be sent or answered.
pub(super) fn send_error(e: SendRequestError) -> GatewayError {
    match e {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            GatewayError::UpstreamTimeout
        }
        other => GatewayError::UpstreamUnavailable(other.to_string()),
    }
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
    let target = match req.query_string() {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let mut url = String::with_capacity(upstream.origin.len() + target.len());
    url.push_str(&upstream.origin);
    url.push_str(&target);
    if ws::tunnels(&req) {
        let mut headers = HeaderMap::with_capacity(req.headers().len() + 8);
        forward_headers(&req, user.as_ref(), gateway.forward_claims, &mut headers);
        let started = Instant::now();
        let answer = ws::tunnel(payload, &upstream.tunnels, &url, headers, upstream.timeout).await;
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            IpAddr::V4(Ipv4Addr::new(0, 9, 10, 99)),
            IpAddr::V4(Ipv4Addr::new(100, 101, 199, 255)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        ] {
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_the_hops() {
        let peer = SocketAddr::from(([192, 0, 2, 7], 4000));
        let first = TestRequest::get().peer_addr(peer).to_http_request();
        assert_eq!(forwarded_for(&first), "192.0.2.7");
        let hopped = TestRequest::get()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "203.0.113.9, 10.0.0.1"))
            .to_http_request();
        assert_eq!(forwarded_for(&hopped), "203.0.113.9, 10.0.0.1, 192.0.2.7");
        let no_peer = TestRequest::get()
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .to_http_request();
        assert_eq!(forwarded_for(&no_peer), "203.0.113.9");
    }

    #[test]
    fn the_scheme_is_the_listeners_unless_a_proxy_says_otherwise() {
        assert_eq!(scheme(&TestRequest::get().to_http_request()), "http");
        for (name, value, expected) in [
            ("X-Forwarded-Proto", "https", "https"),
            ("Forwarded", "for=192.0.2.60;proto=https", "https"),
            ("X-Forwarded-Proto", "gopher", "http"),
        ] {
            let req = TestRequest::get()
                .insert_header((name, value))
                .to_http_request();
            assert_eq!(scheme(&req), expected, "{name}: {value}");
        }
    }
}
