//! Every way authentication or authorization can fail, mapped to HTTP in exactly one
//! place, and the explanation that goes with a refusal.
//!
//! The `detail` strings are the contract's; they never carry a token, a key or a
//! secret. The explanation of a [`Rejection`] (what was expected, what the token has)
//! is for operators: `keygate verify` prints it and the extractor logs it at `debug`;
//! it never reaches a response body.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::reverification::Reverification;

/// An authentication (401), authorization (403) or key-availability (503) failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// No `exp`, or no non-empty string user claim (or claims the application asked
    /// for with [`AuthUser::claims_as`](crate::AuthUser::claims_as) that the token lacks).
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
    /// A token type or Clerk category (`cat`) the route does not accept.
    #[error("token_type_not_accepted")]
    TokenTypeNotAccepted,
    /// A Clerk cookie token issued before the client's last sign-in state change
    /// (`__client_uat`).
    #[error("session_outdated")]
    SessionOutdated,
    /// The keys needed to decide cannot be had right now.
    #[error("keys_unavailable")]
    KeysUnavailable {
        /// Seconds to put in `Retry-After`.
        retry_after: u64,
    },
    /// Authenticated, but lacking the org role or permission the route needs.
    #[error("insufficient_permission")]
    Forbidden,
    /// Authenticated, but the user has not verified recently enough for the route
    /// (Clerk's step-up reverification). The body carries Clerk's `clerk_error`, so the
    /// frontend's `useReverification()` asks the user to verify and retries.
    #[error("reverification_required")]
    ReverificationRequired(Reverification),
    /// The application uses [`AuthUser`](crate::AuthUser) without registering an
    /// [`Authenticator`](crate::Authenticator) with `.app_data(..)`: a programming error.
    #[error("authenticator_not_registered")]
    NotRegistered,
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
            AuthError::TokenTypeNotAccepted => "token_type_not_accepted",
            AuthError::SessionOutdated => "session_outdated",
            AuthError::KeysUnavailable { .. } => "keys_unavailable",
            AuthError::Forbidden => "insufficient_permission",
            AuthError::ReverificationRequired(_) => "reverification_required",
            AuthError::NotRegistered => "internal",
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
            AuthError::ReverificationRequired(_) => "Reverification required",
            AuthError::NotRegistered => "Internal error",
            _ => "Invalid token",
        }
    }

    /// Every code an [`AuthError`] can have, for observers that pre-register labels.
    pub const CODES: &'static [&'static str] = &[
        "missing_token",
        "malformed_token",
        "algorithm_not_allowed",
        "invalid_signature",
        "unknown_key",
        "token_expired",
        "token_not_yet_valid",
        "token_issued_in_future",
        "missing_claim",
        "invalid_issuer",
        "invalid_audience",
        "unauthorized_party",
        "token_revoked",
        "session_pending",
        "token_type_not_accepted",
        "session_outdated",
        "keys_unavailable",
        "insufficient_permission",
        "reverification_required",
        "internal",
    ];
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::KeysUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Forbidden | AuthError::ReverificationRequired(_) => StatusCode::FORBIDDEN,
            AuthError::NotRegistered => StatusCode::INTERNAL_SERVER_ERROR,
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
            AuthError::Forbidden
            | AuthError::ReverificationRequired(_)
            | AuthError::NotRegistered => {}
            other => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    other.detail()
                );
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
        }
        let mut body = serde_json::json!({ "detail": self.detail(), "code": self.code() });
        if let AuthError::ReverificationRequired(requirement) = self {
            // Exactly what `reverificationError()` of Clerk's SDK builds, beside the
            // contract's two fields: `isReverificationHint()` looks for this object.
            body["clerk_error"] = serde_json::json!({
                "type": "forbidden",
                "reason": "reverification-error",
                "metadata": { "reverification": requirement.to_clerk_metadata() },
            });
        }
        response.json(body)
    }
}

/// A refusal with its explanation: what was expected and what the token has.
///
/// The explanation never contains the token or a key; claim values it quotes are
/// shortened. [`Authenticator::explain`](crate::Authenticator::explain) returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", error.code(), reason)]
pub struct Rejection {
    /// The error the client is answered with.
    pub error: AuthError,
    /// One line for the operator.
    pub reason: Cow<'static, str>,
}

impl Rejection {
    /// A refusal explained by `reason`.
    pub fn new(error: AuthError, reason: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            error,
            reason: reason.into(),
        }
    }
}

impl From<AuthError> for Rejection {
    fn from(error: AuthError) -> Rejection {
        let reason = match error {
            AuthError::MissingToken => "no Bearer token in Authorization and no session cookie",
            other => other.detail(),
        };
        Rejection::new(error, reason)
    }
}

/// A claim value for an explanation: JSON, cut to 80 characters.
pub(crate) fn shown(value: Option<&serde_json::Value>) -> String {
    match value {
        None => "none".to_string(),
        Some(value) => {
            let text = value.to_string();
            match text.char_indices().nth(80) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::auth::reverification::FactorLevel;
    use actix_web::body::MessageBody;
    use serde_json::{Value, json};

    fn answer(error: AuthError) -> (u16, Option<String>, Value) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.into_body().try_into_bytes().unwrap();
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn refusals_of_authorization_are_403_without_a_challenge() {
        assert_eq!(
            answer(AuthError::Forbidden),
            (
                403,
                None,
                json!({"detail": "Forbidden", "code": "insufficient_permission"})
            )
        );
        assert_eq!(
            answer(AuthError::ReverificationRequired(Reverification::Strict)),
            (
                403,
                None,
                json!({
                    "detail": "Reverification required",
                    "code": "reverification_required",
                    "clerk_error": {
                        "type": "forbidden",
                        "reason": "reverification-error",
                        "metadata": {"reverification": "strict"}
                    }
                })
            )
        );
        let custom = Reverification::Custom {
            level: FactorLevel::MultiFactor,
            after_minutes: 30,
        };
        let (_, _, body) = answer(AuthError::ReverificationRequired(custom));
        assert_eq!(
            body["clerk_error"]["metadata"]["reverification"],
            json!({"level": "multi_factor", "afterMinutes": 30})
        );
    }

    #[test]
    fn every_code_is_listed() {
        let errors = [
            AuthError::Forbidden,
            AuthError::ReverificationRequired(Reverification::Lax),
            AuthError::NotRegistered,
            AuthError::KeysUnavailable { retry_after: 1 },
        ];
        for error in errors {
            assert!(AuthError::CODES.contains(&error.code()), "{error:?}");
        }
    }
}
