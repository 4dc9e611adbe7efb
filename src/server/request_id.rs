//! `X-Request-Id`: every request gets an id, every response carries it, every log line
//! about the request has it as `request_id`, and the gateway forwards it upstream.
//!
//! A client's own id is kept when it is 1–128 visible ASCII characters (what load
//! balancers and other proxies send), so one id follows a request across services;
//! anything else is replaced, because the id is written into logs and headers.
//!
//! [`FrontLayer`], the outermost middleware, assigns it; CORS runs inside that layer,
//! so that its answers carry the id too.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_service::ServiceExt;
use actix_service::boxed::{self, BoxService};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use pin_project_lite::pin_project;

use super::cors::{self, CorsConfig};

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
            // Visible ASCII is UTF-8, so the check cannot fail.
            Some(id) if acceptable(id) => match std::str::from_utf8(id) {
                Ok(id) => RequestId(id.into()),
                Err(_) => RequestId::generate(),
            },
            _ => RequestId::generate(),
        }
    }

    /// A new id: 128 random bits as 32 hex digits.
    pub fn generate() -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = rand::random::<u128>().to_be_bytes();
        let mut out = [0u8; 32];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        // Hex digits are ASCII: the check cannot fail (and costs less than a
        // replacement-aware conversion).
        match std::str::from_utf8(&out) {
            Ok(hex) => RequestId(hex.into()),
            Err(_) => RequestId("0".repeat(32).into()),
        }
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

/// The outermost middleware: assigns the id before anything else runs, runs CORS
/// (`actix-cors` inside keygate's shaping of its answers) when it is configured, and
/// puts the id on the response, errors and CORS refusals included.
///
/// One layer rather than three (`from_fn` for the id, and CORS and its shaping each
/// behind a `Condition`): without CORS, which is the default, a request passes through
/// no disabled layer and no boxed future.
#[derive(Clone)]
pub(crate) struct FrontLayer {
    cors: Option<CorsConfig>,
}

impl FrontLayer {
    /// With CORS as `cors` says (`None`: off).
    pub(crate) fn new(cors: Option<CorsConfig>) -> FrontLayer {
        FrontLayer { cors }
    }
}

impl<S, B> Transform<S, ServiceRequest> for FrontLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = FrontService<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<FrontService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let cors = self.cors.as_ref().map(CorsConfig::middleware);
        Box::pin(async move {
            let Some(cors) = cors else {
                return Ok(FrontService::Plain(service));
            };
            let service = cors.new_transform(service).await?;
            let service = from_fn(cors::shape).new_transform(service).await?;
            let service = service.map(|res: ServiceResponse<_>| res.map_into_boxed_body());
            Ok(FrontService::Cors(boxed::service(service)))
        })
    }
}

/// [`FrontLayer`] around one worker's application.
pub(crate) enum FrontService<S> {
    /// Without CORS.
    Plain(S),
    /// Through CORS and its shaping.
    Cors(BoxService<ServiceRequest, ServiceResponse<BoxBody>, actix_web::Error>),
}

impl<S, B> Service<ServiceRequest> for FrontService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            FrontService::Plain(service) => service.poll_ready(cx),
            FrontService::Cors(service) => service.poll_ready(cx),
        }
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let given = req.headers().get(&HEADER);
        let id = RequestId::for_request(given);
        // A kept id goes back as the header it came in (a shared buffer, not a copy).
        let value = match given {
            Some(given) if given.as_bytes() == id.as_str().as_bytes() => Some(given.clone()),
            _ => HeaderValue::from_str(id.as_str()).ok(),
        };
        req.extensions_mut().insert(id);
        let inner = match self {
            FrontService::Plain(service) => Inner::Plain {
                fut: service.call(req),
            },
            FrontService::Cors(service) => Inner::Cors {
                fut: service.call(req),
            },
        };
        FrontFuture { inner, value }
    }
}

pin_project! {
    #[project = InnerProjection]
    enum Inner<F> {
        Plain { #[pin] fut: F },
        Cors { fut: LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>> },
    }
}

pin_project! {
    /// The response of [`FrontService`].
    pub(crate) struct FrontFuture<F> {
        #[pin]
        inner: Inner<F>,
        value: Option<HeaderValue>,
    }
}

impl<F, B> Future for FrontFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = match this.inner.project() {
            InnerProjection::Plain { fut } => match fut.poll(cx) {
                Poll::Ready(outcome) => outcome.map(ServiceResponse::map_into_left_body),
                Poll::Pending => return Poll::Pending,
            },
            InnerProjection::Cors { fut } => match fut.as_mut().poll(cx) {
                Poll::Ready(outcome) => outcome.map(ServiceResponse::map_into_right_body),
                Poll::Pending => return Poll::Pending,
            },
        };
        let value = this.value.take();
        Poll::Ready(match outcome {
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
        })
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
