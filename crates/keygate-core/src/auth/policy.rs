//! The claims rules, fixed at start: time, issuer, audience, authorized party, the user
//! claim, the Clerk session status and the JSON type of every claim they read. Policy
//! is data; handlers never branch on configuration.
//!
//! Each rule reads a claim with its JSON type: a claim of the wrong type is never
//! taken for an absent one (`"nbf": null` is malformed, an `azp` that is a number is
//! not an authorized party).

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::AuthError;
use super::claims::{Claims, Field, Fva, type_name};
use super::error::Rejection;
use super::token_type::TokenType;

/// The claims rules of sections 2, 8 and 11 of the contract.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `JWT_ALGORITHMS`.
    pub algorithms: Arc<[Algorithm]>,
    /// `JWT_ISSUER` (empty: not checked).
    pub issuers: Arc<[String]>,
    /// `JWT_AUDIENCE` (empty: not checked).
    pub audiences: Arc<[String]>,
    /// `OAUTH_AUDIENCE`: what an OAuth access token's `aud` must contain.
    pub oauth_audience: Option<Arc<str>>,
    /// `JWT_AUTHORIZED_PARTIES` (empty: not checked).
    pub authorized_parties: Arc<[String]>,
    /// `JWT_REQUIRE_AZP`.
    pub require_azp: bool,
    /// `JWT_ACCEPT_PENDING`.
    pub accept_pending: bool,
    /// `JWT_ACCEPT_TEMPLATES`: JWT-template tokens count as session tokens.
    pub accept_templates: bool,
    /// `JWT_LEEWAY_SECS`.
    pub leeway: i64,
    /// `JWT_USER_CLAIM`.
    pub user_claim: Arc<str>,
}

fn malformed(reason: String) -> Rejection {
    Rejection::new(AuthError::MalformedToken, reason)
}

impl Policy {
    /// The rules on `exp`, `nbf` and `iat`, which a cached token must pass again. A
    /// token has expired when now ≥ `exp` + leeway (RFC 7519: now must be before `exp`).
    pub fn check_time(&self, claims: &Claims, now: i64) -> Result<(), Rejection> {
        if let Some(exp) = claims.exp()
            && now >= exp.saturating_add(self.leeway)
        {
            return Err(Rejection::new(
                AuthError::TokenExpired,
                format!(
                    "exp {exp} + leeway {}s is not after now ({now})",
                    self.leeway
                ),
            ));
        }
        if let Some(nbf) = claims.nbf()
            && nbf.saturating_sub(self.leeway) > now
        {
            return Err(Rejection::new(
                AuthError::TokenNotYetValid,
                format!("nbf {nbf} - leeway {}s is after now ({now})", self.leeway),
            ));
        }
        if let Some(iat) = claims.iat()
            && iat.saturating_sub(self.leeway) > now
        {
            return Err(Rejection::new(
                AuthError::TokenIssuedInFuture,
                format!("iat {iat} - leeway {}s is after now ({now})", self.leeway),
            ));
        }
        Ok(())
    }

    /// The JSON types the rules rely on: `exp` a number (required for a JWT), `nbf` and
    /// `iat` numbers when present, `sid` and `sts` strings when present; and those of
    /// the claims `has()` reads: `pla` and `fea` strings, `fva` an array of numbers
    /// (`null` counting as absent for these three, as in Clerk's SDK).
    fn check_types(&self, claims: &Claims, exp_required: bool) -> Result<(), Rejection> {
        match &claims.exp {
            Field::Num(..) => {}
            Field::Absent if exp_required => {
                return Err(Rejection::new(
                    AuthError::MissingClaim,
                    "the token has no exp claim",
                ));
            }
            Field::Absent => {}
            other => {
                return Err(malformed(format!(
                    "exp is {}, not a number",
                    type_name(other)
                )));
            }
        }
        for (name, field) in [("nbf", &claims.nbf), ("iat", &claims.iat)] {
            if !matches!(field, Field::Absent | Field::Num(..)) {
                return Err(malformed(format!(
                    "{name} is {}, not a number",
                    type_name(field)
                )));
            }
        }
        for (name, field) in [("sid", &claims.sid), ("sts", &claims.sts)] {
            if !matches!(field, Field::Absent | Field::Str(_)) {
                return Err(malformed(format!(
                    "{name} is {}, not a string",
                    type_name(field)
                )));
            }
        }
        for (name, field) in [("pla", &claims.pla), ("fea", &claims.fea)] {
            if !matches!(field, Field::Absent | Field::Str(_) | Field::Other("null")) {
                return Err(malformed(format!(
                    "{name} is {}, not a comma-separated string",
                    type_name(field)
                )));
            }
        }
        if let Fva::Other(kind) = claims.fva
            && kind != "null"
        {
            return Err(malformed(format!(
                "fva is {kind}, not an array of two numbers"
            )));
        }
        Ok(())
    }

    /// Every claims rule for a JWT of `token_type`.
    pub fn check(&self, claims: &Claims, token_type: TokenType, now: i64) -> Result<(), Rejection> {
        self.check_types(claims, true)?;
        let session = token_type == TokenType::SessionToken;
        if session && claims.user().is_none() {
            return Err(Rejection::new(
                AuthError::MissingClaim,
                format!(
                    "expected a non-empty string user claim {:?} (JWT_USER_CLAIM), the token has {}",
                    &*self.user_claim,
                    claims.shown(&self.user_claim)
                ),
            ));
        }
        if !session && claims.sub().is_none_or(str::is_empty) {
            return Err(Rejection::new(
                AuthError::MissingClaim,
                format!(
                    "a {token_type} needs a non-empty string sub, the token has {}",
                    claims.shown("sub")
                ),
            ));
        }
        self.check_time(claims, now)?;
        if !self.issuers.is_empty()
            && !claims
                .iss()
                .is_some_and(|iss| self.issuers.iter().any(|i| i == iss))
        {
            return Err(Rejection::new(
                AuthError::InvalidIssuer,
                format!(
                    "expected iss in [{}] (JWT_ISSUER), the token has {}",
                    self.issuers.join(", "),
                    claims.shown("iss")
                ),
            ));
        }
        match token_type {
            TokenType::OauthToken => self.check_oauth_audience(claims)?,
            _ => self.check_audience(claims)?,
        }
        if session {
            self.check_authorized_party(claims)?;
            if !self.accept_pending && claims.sts() == Some("pending") {
                return Err(Rejection::new(
                    AuthError::SessionPending,
                    "the session is pending (sts) and JWT_ACCEPT_PENDING is false",
                ));
            }
        }
        Ok(())
    }

    fn check_audience(&self, claims: &Claims) -> Result<(), Rejection> {
        if self.audiences.is_empty()
            || claims
                .aud()
                .iter()
                .any(|aud| self.audiences.iter().any(|a| a == aud))
        {
            return Ok(());
        }
        Err(Rejection::new(
            AuthError::InvalidAudience,
            format!(
                "expected aud to contain one of [{}] (JWT_AUDIENCE), the token has {}",
                self.audiences.join(", "),
                claims.shown("aud")
            ),
        ))
    }

    fn check_oauth_audience(&self, claims: &Claims) -> Result<(), Rejection> {
        match &self.oauth_audience {
            Some(wanted) if !claims.aud().iter().any(|aud| *aud == &**wanted) => {
                Err(Rejection::new(
                    AuthError::InvalidAudience,
                    format!(
                        "expected aud to contain {:?} (OAUTH_AUDIENCE), the token has {}",
                        &**wanted,
                        claims.shown("aud")
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// `azp` against the authorized parties: a present `azp` must be one of them, of
    /// whatever JSON type it is; an absent one passes only when `azp` is not required.
    fn check_authorized_party(&self, claims: &Claims) -> Result<(), Rejection> {
        if self.authorized_parties.is_empty() {
            return Ok(());
        }
        let allowed = match &claims.azp {
            Field::Absent => !self.require_azp,
            field => claims
                .field_str(field)
                .is_some_and(|azp| self.authorized_parties.iter().any(|p| p == azp)),
        };
        if allowed {
            return Ok(());
        }
        Err(Rejection::new(
            AuthError::UnauthorizedParty,
            format!(
                "expected azp in [{}] (JWT_AUTHORIZED_PARTIES{}), the token has {}",
                self.authorized_parties.join(", "),
                if self.require_azp {
                    ", required by JWT_REQUIRE_AZP"
                } else {
                    ""
                },
                claims.shown("azp")
            ),
        ))
    }

    /// The types of a machine identity's claims (built by keygate, so this only
    /// guards against a Backend API answer of an unexpected shape) and its expiry.
    pub fn check_machine(&self, claims: &Claims, now: i64) -> Result<(), Rejection> {
        self.check_types(claims, false)?;
        self.check_time(claims, now)
    }
}
