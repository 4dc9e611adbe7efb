//! Every way authentication or authorization can fail, mapped to HTTP in exactly one
//! place, and the explanation that goes with a refusal.
//!
//! The contract of each failure — its code, status, `detail` and `WWW-Authenticate`
//! challenge — is one row of the table of `error_table!`; `Display`,
//! `AuthError::code`, `AuthError::detail`, `AuthError::CODES`, the HTTP answer
//! and the check against `docs/reference.md` all read that row, so they cannot drift
//! apart.
//!
//! The `detail` strings are the contract's; they never carry a token, a key or a
//! secret. The explanation of a [`Rejection`] (what was expected, what the token has)
//! is for operators: `keygate verify` prints it and the extractor logs it at `debug`;
//! it never reaches a response body.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::reverification::Reverification;

/// An authentication (401), authorization (403) or key-availability (503) failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No token in the `Authorization` header or the session cookie.
    MissingToken,
    /// Not three base64url parts, bad JSON, oversized, forbidden header.
    MalformedToken,
    /// `alg` not allowed, `none`, or not matching the key.
    AlgorithmNotAllowed,
    /// The signature does not verify.
    InvalidSignature,
    /// No key with the token's `kid`, after the refetch the actor allows.
    UnknownKey,
    /// `exp` + leeway is past.
    TokenExpired,
    /// `nbf` − leeway is in the future.
    TokenNotYetValid,
    /// `iat` − leeway is in the future.
    TokenIssuedInFuture,
    /// No `exp`, or no non-empty string user claim (or claims the application asked
    /// for with [`AuthUser::claims_as`](crate::AuthUser::claims_as) that the token lacks).
    MissingClaim,
    /// `iss` not allowed.
    InvalidIssuer,
    /// `aud` not allowed.
    InvalidAudience,
    /// `azp` not allowed (or missing when required).
    UnauthorizedParty,
    /// The token's session was revoked.
    TokenRevoked,
    /// A Clerk session with `sts: pending`, treated as signed out.
    SessionPending,
    /// A token type or Clerk category (`cat`) the route does not accept.
    TokenTypeNotAccepted,
    /// A Clerk cookie token issued before the client's last sign-in state change
    /// (`__client_uat`).
    SessionOutdated,
    /// The keys needed to decide cannot be had right now.
    KeysUnavailable {
        /// Seconds to put in `Retry-After`.
        retry_after: u64,
    },
    /// Authenticated, but lacking the org role or permission the route needs.
    Forbidden,
    /// Authenticated, but the user has not verified recently enough for the route
    /// (Clerk's step-up reverification). The body carries Clerk's `clerk_error`, so the
    /// frontend's `useReverification()` asks the user to verify and retries.
    ReverificationRequired(Reverification),
    /// The application uses [`AuthUser`](crate::AuthUser) without registering an
    /// [`Authenticator`](crate::Authenticator) with `.app_data(..)`: a programming error.
    NotRegistered,
}

/// What a failure's answer carries in `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// `Bearer`: no token was sent (RFC 6750, section 3).
    Bearer,
    /// `Bearer error="invalid_token", error_description="<detail>"`.
    InvalidToken,
    /// No challenge: the caller is authenticated (403) or authentication is not the
    /// question (500, 503).
    None,
}

/// One row of the error contract.
#[derive(Debug, Clone, Copy)]
struct Entry {
    code: &'static str,
    status: StatusCode,
    detail: &'static str,
    challenge: Challenge,
}

/// The error contract, written once: each row is a variant's pattern, then its code,
/// status, detail and challenge. It generates the lookup from a variant to its row
/// and the list of every row, so a variant cannot lack a row and `CODES` cannot miss
/// a code.
macro_rules! error_table {
    ($($pattern:pat => $code:literal, $status:ident, $detail:literal, $challenge:ident;)*) => {
        impl AuthError {
            fn entry(&self) -> Entry {
                match self {
                    $($pattern => Entry {
                        code: $code,
                        status: StatusCode::$status,
                        detail: $detail,
                        challenge: Challenge::$challenge,
                    },)*
                }
            }

            /// Every code an [`AuthError`] can have, for observers that pre-register labels.
            pub const CODES: &'static [&'static str] = &[$($code),*];
        }

        /// Every row of the table, for the check against the reference.
        #[cfg(test)]
        const TABLE: &[Entry] = &[$(Entry {
            code: $code,
            status: StatusCode::$status,
            detail: $detail,
            challenge: Challenge::$challenge,
        }),*];
    };
}

error_table! {
    AuthError::MissingToken => "missing_token", UNAUTHORIZED, "Not authenticated", Bearer;
    AuthError::MalformedToken => "malformed_token", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::AlgorithmNotAllowed => "algorithm_not_allowed", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::InvalidSignature => "invalid_signature", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::UnknownKey => "unknown_key", UNAUTHORIZED, "Public key not found", InvalidToken;
    AuthError::TokenExpired => "token_expired", UNAUTHORIZED, "Token expired", InvalidToken;
    AuthError::TokenNotYetValid => "token_not_yet_valid", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::TokenIssuedInFuture => "token_issued_in_future", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::MissingClaim => "missing_claim", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::InvalidIssuer => "invalid_issuer", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::InvalidAudience => "invalid_audience", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::UnauthorizedParty => "unauthorized_party", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::TokenRevoked => "token_revoked", UNAUTHORIZED, "Token revoked", InvalidToken;
    AuthError::SessionPending => "session_pending", UNAUTHORIZED, "Session pending", InvalidToken;
    AuthError::TokenTypeNotAccepted => "token_type_not_accepted", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::SessionOutdated => "session_outdated", UNAUTHORIZED, "Invalid token", InvalidToken;
    AuthError::KeysUnavailable { .. } => "keys_unavailable", SERVICE_UNAVAILABLE, "Signing keys unavailable", None;
    AuthError::Forbidden => "insufficient_permission", FORBIDDEN, "Forbidden", None;
    AuthError::ReverificationRequired(_) => "reverification_required", FORBIDDEN, "Reverification required", None;
    AuthError::NotRegistered => "internal", INTERNAL_SERVER_ERROR, "Internal error", None;
}

impl AuthError {
    /// The machine-readable `code` of the body.
    pub fn code(&self) -> &'static str {
        self.entry().code
    }

    /// The human-readable `detail` of the body.
    pub fn detail(&self) -> &'static str {
        self.entry().detail
    }
}

/// The code, as in the body: what a log line or `keygate verify` names.
impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for AuthError {}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        self.entry().status
    }

    fn error_response(&self) -> HttpResponse {
        let entry = self.entry();
        let mut body = error_body(entry.detail, entry.code);
        if let AuthError::ReverificationRequired(requirement) = self {
            // Exactly what `reverificationError()` of Clerk's SDK builds, beside the
            // contract's two fields: `isReverificationHint()` looks for this object.
            body["clerk_error"] = serde_json::json!({
                "type": "forbidden",
                "reason": "reverification-error",
                "metadata": { "reverification": requirement.to_clerk_metadata() },
            });
        }
        let mut response = HttpResponse::build(entry.status);
        match entry.challenge {
            Challenge::Bearer => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Challenge::InvalidToken => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    entry.detail
                );
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            Challenge::None => {}
        }
        if let AuthError::KeysUnavailable { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        response.json(body)
    }
}

/// The JSON body of keygate's error answers, `{"detail": …, "code": …}` (section
/// "Failures" of `docs/reference.md`), made in one place so that every answer that
/// builds it here has the same shape and the same bytes (`code` first, as `serde_json`
/// orders keys). The library's refusals, the service's routes, `/dev` and CORS
/// refusals use it; an application's own errors may too.
///
/// It is a [`serde_json::Value`] so an answer can add a field beside the two (the
/// step-up answer adds Clerk's `clerk_error`).
pub fn error_body(detail: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "detail": detail, "code": code })
}

/// An answer with `status` and the [`error_body`] of `detail` and `code`; headers
/// that belong to a particular answer (`Retry-After`, `Vary`) are added by the caller.
///
/// ```
/// use actix_web::http::StatusCode;
///
/// let answer = keygate_core::error_response(StatusCode::BAD_GATEWAY, "Bad gateway", "upstream_unavailable");
/// assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
/// ```
pub fn error_response(status: StatusCode, detail: &str, code: &str) -> HttpResponse {
    HttpResponse::build(status).json(error_body(detail, code))
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
            AuthError::MissingToken => super::sources::NO_TOKEN,
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
            assert_eq!(error.to_string(), error.code());
        }
        assert_eq!(AuthError::NotRegistered.to_string(), "internal");
        assert_eq!(
            TABLE.iter().map(|entry| entry.code).collect::<Vec<_>>(),
            AuthError::CODES
        );
    }

    #[test]
    fn answers_follow_the_table() {
        let errors = [
            AuthError::MissingToken,
            AuthError::MalformedToken,
            AuthError::UnknownKey,
            AuthError::TokenExpired,
            AuthError::TokenRevoked,
            AuthError::SessionPending,
            AuthError::KeysUnavailable { retry_after: 7 },
            AuthError::Forbidden,
            AuthError::NotRegistered,
        ];
        for error in errors {
            let (status, challenge, body) = answer(error);
            assert_eq!(status, error.entry().status.as_u16(), "{error:?}");
            assert_eq!(
                body,
                json!({"detail": error.detail(), "code": error.code()}),
                "{error:?}"
            );
            let expected = match error.entry().challenge {
                Challenge::Bearer => Some("Bearer".to_string()),
                Challenge::InvalidToken => Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    error.detail()
                )),
                Challenge::None => None,
            };
            assert_eq!(challenge, expected, "{error:?}");
        }
        assert_eq!(
            answer(AuthError::MissingToken),
            (
                401,
                Some("Bearer".to_string()),
                json!({"detail": "Not authenticated", "code": "missing_token"})
            )
        );
        let response = AuthError::KeysUnavailable { retry_after: 7 }.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "7");
    }

    #[test]
    fn the_body_keeps_its_bytes() {
        let response = AuthError::TokenExpired.error_response();
        let body = response.into_body().try_into_bytes().unwrap();
        assert_eq!(
            &body[..],
            br#"{"code":"token_expired","detail":"Token expired"}"#
        );
    }

    /// Every row of the table is in the reference as the user reads it: a `401` row
    /// names the code and its detail; any other answer is written out as its status
    /// and body.
    #[test]
    fn the_reference_states_every_row() {
        let reference = include_str!("../../../../docs/reference.md");
        for entry in TABLE {
            let code = format!("`{}`", entry.code);
            let found = if entry.status == StatusCode::UNAUTHORIZED {
                let detail = format!("`{}`", entry.detail);
                reference
                    .lines()
                    .filter(|line| line.starts_with('|'))
                    .any(|line| line.contains(&code) && line.contains(&detail))
            } else {
                let body = format!(
                    "{{\"detail\":\"{}\",\"code\":\"{}\"",
                    entry.detail, entry.code
                );
                let status = format!("`{}`", entry.status.as_u16());
                reference
                    .lines()
                    .filter(|line| line.starts_with('|'))
                    .any(|line| line.contains(&body) && line.contains(&status))
            };
            assert!(found, "docs/reference.md does not state {entry:?}");
        }
    }
}
