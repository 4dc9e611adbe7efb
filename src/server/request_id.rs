//! `X-Request-Id`: every request gets an id, every response carries it, every log line
//! about the request has it as `request_id`, and the gateway forwards it upstream.
//!
//! A client's own id is kept when it is 1–128 visible ASCII characters (what load
//! balancers and other proxies send), so one id follows a request across services;
//! anything else is replaced, because the id is written into logs and headers.

use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

/// The header, in and out.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client id kept.
const MAX_LEN: usize = 128;

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(Rc<str>);

impl RequestId {
    /// The client's id when it is acceptable, else a new random one.
    pub fn for_request(value: Option<&HeaderValue>) -> RequestId {
        match value.map(HeaderValue::as_bytes) {
            Some(id) if acceptable(id) => {
                // Visible ASCII is UTF-8.
                RequestId(String::from_utf8_lossy(id).into())
            }
            _ => RequestId::generate(),
        }
    }

    /// A new id: 128 random bits as 32 hex digits.
    pub fn generate() -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits = rand::random::<u128>();
        let mut out = [0u8; 32];
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
        }
        // Hex digits are ASCII.
        RequestId(String::from_utf8_lossy(&out).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of `req`, if the middleware gave it one.
    pub fn of(req: &HttpRequest) -> Option<RequestId> {
        req.extensions().get::<RequestId>().cloned()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1–128 visible ASCII characters (`!` to `~`): nothing that could break a header or
/// a log line.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// Middleware (with `from_fn`, outermost): assigns the id before anything else runs
/// and puts it on the response, errors included.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::for_request(req.headers().get(&HEADER));
    req.extensions_mut().insert(id.clone());
    let value = HeaderValue::from_str(id.as_str()).ok();
    match next.call(req).await {
        Ok(mut response) => {
            if let Some(value) = value {
                response.headers_mut().insert(HEADER, value);
            }
            Ok(response)
        }
        // An error that escaped every handler becomes its response here, so that it
        // carries the id like any other (the request cannot be kept for this: routing
        // needs it unshared).
        Err(error) => {
            let mut response = error.error_response();
            if let Some(value) = value {
                response.headers_mut().insert(HEADER, value);
            }
            Err(InternalError::from_response(error, response).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &[u8]) -> String {
        let value = HeaderValue::from_bytes(raw).ok();
        RequestId::for_request(value.as_ref()).to_string()
    }

    #[test]
    fn a_clients_visible_ascii_id_is_kept() {
        assert_eq!(id(b"abc-123"), "abc-123");
        assert_eq!(id(b"!~"), "!~");
        let longest = "x".repeat(128);
        assert_eq!(id(longest.as_bytes()), longest);
    }

    #[test]
    fn anything_else_gets_a_new_id() {
        for bad in [
            &b""[..],
            b"has space",
            b"tab\there",
            &[b'x'; 129],
            "é".as_bytes(),
        ] {
            let got = id(bad);
            assert_eq!(got.len(), 32, "{bad:?} -> {got}");
            assert!(got.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(
            RequestId::generate().to_string(),
            RequestId::generate().to_string()
        );
    }
}
