//! Every way authentication or authorization can fail, mapped to HTTP in exactly one place.
//!
//! The `detail` strings are the contract's; they never carry a token, a key or a secret.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

/// An authentication (401), authorization (403) or key-availability (503) failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the `Authorization` header or the session cookie.
    #[error("missing_token")]
    MissingToken,
    /// Not three base64url parts, bad JSON, oversized, forbidden header.
    #[error("malformed_token")]
    MalformedToken,
    /// `alg` not allowed, `none`, or not matching the key.
    #[error("algorithm_not_allowed")]
    AlgorithmNotAllowed,
    /// The signature does not verify.
    #[error("invalid_signature")]
    InvalidSignature,
    /// No key with the token's `kid`, after the refetch the actor allows.
    #[error("unknown_key")]
    UnknownKey,
    /// `exp` + leeway is past.
    #[error("token_expired")]
    TokenExpired,
    /// `nbf` − leeway is in the future.
    #[error("token_not_yet_valid")]
    TokenNotYetValid,
    /// `iat` − leeway is in the future.
    #[error("token_issued_in_future")]
    TokenIssuedInFuture,
    /// No `exp`, or no non-empty string user claim.
    #[error("missing_claim")]
    MissingClaim,
    /// `iss` not allowed.
    #[error("invalid_issuer")]
    InvalidIssuer,
    /// `aud` not allowed.
    #[error("invalid_audience")]
    InvalidAudience,
    /// `azp` not allowed (or missing when required).
    #[error("unauthorized_party")]
    UnauthorizedParty,
    /// The token's session was revoked.
    #[error("token_revoked")]
    TokenRevoked,
    /// A Clerk session with `sts: pending`, treated as signed out.
    #[error("session_pending")]
    SessionPending,
    /// The keys needed to decide cannot be had right now.
    #[error("keys_unavailable")]
    KeysUnavailable {
        /// Seconds to put in `Retry-After`.
        retry_after: u64,
    },
    /// Authenticated, but lacking the org role or permission the route needs.
    #[error("insufficient_permission")]
    Forbidden,
}

impl AuthError {
    /// The machine-readable `code` of the body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MalformedToken => "malformed_token",
            AuthError::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthError::InvalidSignature => "invalid_signature",
            AuthError::UnknownKey => "unknown_key",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid => "token_not_yet_valid",
            AuthError::TokenIssuedInFuture => "token_issued_in_future",
            AuthError::MissingClaim => "missing_claim",
            AuthError::InvalidIssuer => "invalid_issuer",
            AuthError::InvalidAudience => "invalid_audience",
            AuthError::UnauthorizedParty => "unauthorized_party",
            AuthError::TokenRevoked => "token_revoked",
            AuthError::SessionPending => "session_pending",
            AuthError::KeysUnavailable { .. } => "keys_unavailable",
            AuthError::Forbidden => "insufficient_permission",
        }
    }

    /// The human-readable `detail` of the body.
    pub fn detail(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "Not authenticated",
            AuthError::UnknownKey => "Public key not found",
            AuthError::TokenExpired => "Token expired",
            AuthError::TokenRevoked => "Token revoked",
            AuthError::SessionPending => "Session pending",
            AuthError::KeysUnavailable { .. } => "Signing keys unavailable",
            AuthError::Forbidden => "Forbidden",
            _ => "Invalid token",
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::KeysUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AuthError::MissingToken => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            AuthError::KeysUnavailable { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            AuthError::Forbidden => {}
            other => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    other.detail()
                );
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
        }
        response.json(serde_json::json!({ "detail": self.detail(), "code": self.code() }))
    }
}
