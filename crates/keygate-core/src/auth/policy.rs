//! The claims rules, fixed at start: time, issuer, audience, authorized party, the user
//! claim and the Clerk session status. Policy is data; handlers never branch on
//! configuration.

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::AuthError;
use super::claims::Claims;
use super::error::{Rejection, shown};

/// The claims rules of sections 2 and 8 of the contract.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `JWT_ALGORITHMS`.
    pub algorithms: Arc<[Algorithm]>,
    /// `JWT_ISSUER` (empty: not checked).
    pub issuers: Arc<[String]>,
    /// `JWT_AUDIENCE` (empty: not checked).
    pub audiences: Arc<[String]>,
    /// `JWT_AUTHORIZED_PARTIES` (empty: not checked).
    pub authorized_parties: Arc<[String]>,
    /// `JWT_REQUIRE_AZP`.
    pub require_azp: bool,
    /// `JWT_ACCEPT_PENDING`.
    pub accept_pending: bool,
    /// `JWT_LEEWAY_SECS`.
    pub leeway: i64,
    /// `JWT_USER_CLAIM`.
    pub user_claim: Arc<str>,
}

impl Policy {
    /// The rules on `exp`, `nbf` and `iat`, which a cached token must pass again.
    pub fn check_time(&self, claims: &Claims, now: i64) -> Result<(), Rejection> {
        let exp = claims.exp();
        if now > exp.saturating_add(self.leeway) {
            return Err(Rejection::new(
                AuthError::TokenExpired,
                format!("exp {exp} + leeway {}s is before now ({now})", self.leeway),
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

    /// Every claims rule.
    pub fn check(&self, claims: &Claims, now: i64) -> Result<(), Rejection> {
        claims
            .string(&self.user_claim)
            .ok_or_else(|| {
                Rejection::new(
                    AuthError::MissingClaim,
                    format!(
                        "expected a non-empty string user claim {:?} (JWT_USER_CLAIM), the token has {}",
                        &*self.user_claim,
                        shown(claims.get(&self.user_claim))
                    ),
                )
            })?;
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
                    shown(claims.get("iss"))
                ),
            ));
        }
        if !self.audiences.is_empty()
            && !claims
                .aud()
                .iter()
                .any(|aud| self.audiences.iter().any(|a| a == aud))
        {
            return Err(Rejection::new(
                AuthError::InvalidAudience,
                format!(
                    "expected aud to contain one of [{}] (JWT_AUDIENCE), the token has {}",
                    self.audiences.join(", "),
                    shown(claims.get("aud"))
                ),
            ));
        }
        if !self.authorized_parties.is_empty() {
            let allowed = match claims.azp() {
                Some(azp) => self.authorized_parties.iter().any(|p| p == azp),
                None => !self.require_azp,
            };
            if !allowed {
                return Err(Rejection::new(
                    AuthError::UnauthorizedParty,
                    format!(
                        "expected azp in [{}] (JWT_AUTHORIZED_PARTIES), the token has {}",
                        self.authorized_parties.join(", "),
                        shown(claims.get("azp"))
                    ),
                ));
            }
        }
        if !self.accept_pending && claims.sts() == Some("pending") {
            return Err(Rejection::new(
                AuthError::SessionPending,
                "the session is pending (sts) and JWT_ACCEPT_PENDING is false",
            ));
        }
        Ok(())
    }
}
