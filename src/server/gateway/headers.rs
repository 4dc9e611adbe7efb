//! The one header policy of the gateway: which of a client's headers go on to the
//! upstream and which keygate sets itself — for proxied requests and WebSocket
//! handshakes alike ([`super::proxy`], [`super::ws`]) — and which of an answer's
//! headers are the connection's own.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::{identity, identity_token};
use crate::AuthUser;
use crate::server::request_id::{self, RequestId};

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

/// Which headers of a message are hop-by-hop: the fixed list and the names its
/// `Connection` headers list (read once; most messages have none).
pub(crate) struct HopByHop {
    listed: Vec<HeaderName>,
}

impl HopByHop {
    pub(crate) fn of(headers: &HeaderMap) -> HopByHop {
        HopByHop::listed_in(
            headers
                .get_all(header::CONNECTION)
                .map(HeaderValue::as_bytes),
        )
    }

    /// From the values of a message's `Connection` headers.
    pub(crate) fn listed_in<'a>(connection: impl Iterator<Item = &'a [u8]>) -> HopByHop {
        let listed = connection
            .filter_map(|value| std::str::from_utf8(value).ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        HopByHop { listed }
    }

    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        self.contains_str(name.as_str())
    }

    /// `name` in lower case, as both `http` crates keep names.
    pub(crate) fn contains_str(&self, name: &str) -> bool {
        HOP_BY_HOP.contains(&name) || self.listed.iter().any(|listed| listed == name)
    }
}

/// Where [`forward_headers`] writes: actix-web's map for a WebSocket handshake, hyper's
/// for a proxied request — so that neither request's headers are built twice.
pub(crate) trait HeaderSink {
    /// Adds a value, keeping those already there.
    fn append(&mut self, name: &HeaderName, value: &HeaderValue);
    /// Sets the only value.
    fn insert(&mut self, name: &HeaderName, value: &HeaderValue);
}

impl HeaderSink for HeaderMap {
    fn append(&mut self, name: &HeaderName, value: &HeaderValue) {
        HeaderMap::append(self, name.clone(), value.clone());
    }

    fn insert(&mut self, name: &HeaderName, value: &HeaderValue) {
        HeaderMap::insert(self, name.clone(), value.clone());
    }
}

impl HeaderSink for http::HeaderMap {
    fn append(&mut self, name: &HeaderName, value: &HeaderValue) {
        if let Some((name, value)) = super::client::to_hyper(name, value) {
            http::HeaderMap::append(self, name, value);
        }
    }

    fn insert(&mut self, name: &HeaderName, value: &HeaderValue) {
        if let Some((name, value)) = super::client::to_hyper(name, value) {
            http::HeaderMap::insert(self, name, value);
        }
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
/// `X-Forwarded-Host`, the identity headers of `user` (with its signed identity when
/// there is one) and the request id, into `out`.
pub(crate) fn forward_headers(
    req: &HttpRequest,
    user: Option<&AuthUser>,
    signed: Option<HeaderValue>,
    forward_claims: bool,
    out: &mut impl HeaderSink,
) {
    let skip = HopByHop::of(req.headers());
    for (name, value) in req.headers() {
        if !owned_here(name) && !skip.contains(name) {
            out.append(name, value);
        }
    }
    if let Ok(value) = HeaderValue::try_from(forwarded_for(req)) {
        out.insert(&X_FORWARDED_FOR, &value);
    }
    out.insert(&X_FORWARDED_PROTO, &HeaderValue::from_static(scheme(req)));
    if let Some(host) = req.headers().get(header::HOST) {
        out.insert(&X_FORWARDED_HOST, host);
    }
    if let Some(user) = user {
        for (name, value) in identity::headers(user, forward_claims) {
            out.insert(&name, &value);
        }
    }
    if let Some(signed) = signed {
        out.insert(&identity_token::HEADER, &signed);
    }
    if let Some(id) = RequestId::of(req)
        && let Ok(value) = HeaderValue::from_str(id.as_str())
    {
        out.insert(&request_id::HEADER, &value);
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
