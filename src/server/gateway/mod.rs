//! The gateway: keygate in front of a backend that is not Rust.
//!
//! Two ways, one decision: as the authentication endpoint of an existing proxy
//! ([`forward_auth`], `/auth` for nginx `auth_request`, Traefik `forwardAuth`, Caddy
//! `forward_auth`, Envoy `ext_authz`), or as the reverse proxy itself ([`proxy`], when
//! `UPSTREAM_URL` is set). Either way the path is normalised ([`normalize`]), the
//! [`rules`] decide what it needs, the library's [`Authenticator`] verifies the token,
//! and the upstream learns who the caller is from the [`identity`] headers only — every
//! `X-Auth-*` header a client sent is removed first.

pub(crate) mod client;
pub mod config;
pub mod forward_auth;
pub mod headers;
pub mod identity;
pub mod identity_token;
pub mod normalize;
pub mod proxy;
pub mod rules;
pub mod sockets;
pub mod ws;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use awc::error::{ConnectError, SendRequestError};

use self::normalize::PathError;
use self::rules::{Access, Rules};
use crate::{AuthError, AuthUser, Authenticator};

pub use config::GatewayConfig;

/// Why the gateway refused or could not serve a request. The one place these become HTTP.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Authentication or authorization failed (401, 403, 503).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The path cannot be decided on (above the root, malformed).
    #[error("bad path: {0}")]
    Path(#[from] PathError),
    /// The upstream refused the connection or broke it.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// No response head within `UPSTREAM_TIMEOUT_SECS`.
    #[error("upstream timeout")]
    UpstreamTimeout,
    /// The request body is larger than `GATEWAY_MAX_BODY_BYTES`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body's framing broke after the request was allowed (a chunk size
    /// that is not hex or overflows, more data than a chunk announced).
    #[error("malformed request body")]
    InvalidBody,
    /// A WebSocket upgrade with another method than `GET` (RFC 6455).
    #[error("a WebSocket upgrade must be a GET")]
    InvalidUpgrade,
    /// Forward auth: the headers of two proxy conventions name different requests.
    #[error("the original request's headers disagree")]
    ConflictingOriginal,
    /// `GATEWAY_IDENTITY_TOKEN=true` and the identity could not be signed: the request
    /// is not sent without it.
    #[error(transparent)]
    Identity(#[from] identity_token::MintError),
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        match self {
            GatewayError::Auth(e) => e.status_code(),
            GatewayError::Path(_) => StatusCode::BAD_REQUEST,
            GatewayError::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::InvalidBody | GatewayError::InvalidUpgrade => StatusCode::BAD_REQUEST,
            GatewayError::ConflictingOriginal => StatusCode::FORBIDDEN,
            GatewayError::Identity(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (detail, code) = match self {
            GatewayError::Auth(e) => return e.error_response(),
            GatewayError::Path(_) => ("Bad request", "invalid_path"),
            GatewayError::UpstreamUnavailable(_) => ("Bad gateway", "upstream_unavailable"),
            GatewayError::UpstreamTimeout => ("Gateway timeout", "upstream_timeout"),
            GatewayError::PayloadTooLarge => ("Payload too large", "payload_too_large"),
            GatewayError::InvalidBody => ("Bad request", "invalid_body"),
            GatewayError::InvalidUpgrade => ("Bad request", "invalid_upgrade"),
            GatewayError::ConflictingOriginal => ("Forbidden", "conflicting_original_request"),
            GatewayError::Identity(e) => {
                tracing::error!("{e}");
                ("Internal server error", "identity_unavailable")
            }
        };
        crate::error_response(self.status_code(), detail, code)
    }
}

/// `user`, when every identity value can be sent as a header as it is; else the token
/// is malformed for the gateway, and the operator's log says which claim.
fn faithful(user: AuthUser) -> Result<AuthUser, AuthError> {
    match identity::unfaithful(&user) {
        None => Ok(user),
        Some(rejection) => {
            tracing::debug!(
                code = rejection.error.code(),
                "token rejected: {}",
                rejection.reason
            );
            Err(rejection.error)
        }
    }
}

/// What forward auth and the proxy share: the rules and the authenticator.
pub struct Gateway {
    /// The route rules.
    pub rules: Rules,
    /// The authenticator of the whole service.
    pub authenticator: Authenticator,
    /// `GATEWAY_FORWARD_CLAIMS`.
    pub forward_claims: bool,
    /// How `/auth` reads the original request.
    pub forward_auth: ForwardAuth,
    /// `GATEWAY_IDENTITY_TOKEN=true`: the signer of `X-Auth-Identity`.
    pub identity: Option<identity_token::IdentityTokens>,
}

/// How `/auth` reads the request a proxy asks about.
#[derive(Debug, Clone)]
pub struct ForwardAuth {
    /// `FORWARD_AUTH_HEADERS`.
    pub convention: forward_auth::Convention,
    /// The origins whose CORS preflights pass (`CORS_ALLOWED_ORIGINS`); empty with
    /// `FORWARD_AUTH_PREFLIGHT=false` or CORS off.
    pub preflight_origins: Vec<String>,
}

impl Gateway {
    /// The `X-Auth-Identity` value of a verified caller, when the signed identity is on.
    pub fn signed_identity(
        &self,
        user: Option<&AuthUser>,
    ) -> Result<Option<HeaderValue>, GatewayError> {
        match (&self.identity, user) {
            (Some(tokens), Some(user)) => Ok(Some(tokens.value(user)?)),
            _ => Ok(None),
        }
    }

    /// Decides a request for `method` on the normalised `path`: `Ok(Some(user))` for a
    /// verified caller, `Ok(None)` for an anonymous one on a public route, else why not.
    pub async fn decide(
        &self,
        req: &HttpRequest,
        method: &str,
        path: &str,
    ) -> Result<Option<AuthUser>, GatewayError> {
        let rule = self.rules.decide(method, path);
        let authenticator = match rule.accepts {
            Some(types) => self.authenticator.accepting(types),
            None => self.authenticator.clone(),
        };
        match rule.access {
            // A bad token on a public route is ignored: the request goes on anonymously.
            Access::Public => Ok(authenticator
                .try_authenticate(req)
                .await
                .ok()
                .flatten()
                .and_then(|user| faithful(user).ok())),
            Access::Authenticated => {
                let user = faithful(authenticator.authenticate(req).await?)?;
                rule.authorize(&user)?;
                Ok(Some(user))
            }
        }
    }
}

/// The gateway's answer to a proxied request that could not be sent or answered: a
/// connection that could not be made in time is a timeout, anything else an
/// unavailable upstream, with the whole chain of causes for the log.
pub(crate) fn client_error(e: &hyper_util::client::legacy::Error) -> GatewayError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut message = String::new();
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return GatewayError::UpstreamTimeout;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&error.to_string());
        cause = error.source();
    }
    GatewayError::UpstreamUnavailable(message)
}

/// The gateway's answer to a WebSocket handshake that could not be sent or answered.
pub(crate) fn send_error(e: SendRequestError) -> GatewayError {
    match e {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            GatewayError::UpstreamTimeout
        }
        other => GatewayError::UpstreamUnavailable(other.to_string()),
    }
}
