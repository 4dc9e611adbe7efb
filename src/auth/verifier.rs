//! The verifier: algorithm policy, key choice and claims policy, built once at start.
//!
//! It reads the published key snapshot without locks; only a token with an unknown
//! `kid` waits for the rotation actor. An HS token is only ever checked against the
//! shared secret, an asymmetric one only against public keys of the matching family,
//! so key-confusion attacks have nothing to work with. It never logs a token.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::cache::TokenCache;
use super::claims::{Claims, Org};
use super::{AuthError, token};
use crate::clock::SharedClock;
use crate::config::{Settings, is_hmac, parse_algorithm};
use crate::keys::{KeySet, KeysHandle, PublicKey, RefreshOutcome};
use crate::metrics::Metrics;
use crate::store::revocations::RevocationSet;

/// The claims rules of section 2 of the contract, fixed at start.
#[derive(Debug, Clone)]
pub struct Policy {
    algorithms: Vec<Algorithm>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    authorized_parties: Vec<String>,
    require_azp: bool,
    accept_pending: bool,
    leeway: i64,
    user_claim: String,
}

impl Policy {
    /// The policy the settings describe.
    pub fn from_settings(settings: &Settings) -> Policy {
        Policy {
            algorithms: settings.algorithms.clone(),
            issuers: settings.issuers.clone(),
            audiences: settings.audiences.clone(),
            authorized_parties: settings.authorized_parties.clone(),
            require_azp: settings.require_azp,
            accept_pending: settings.accept_pending,
            leeway: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
            user_claim: settings.user_claim.clone(),
        }
    }

    /// The rules on `exp`, `nbf` and `iat`, which a cached token must pass again.
    fn check_time(&self, claims: &Claims, now: i64) -> Result<(), AuthError> {
        if now > claims.exp.saturating_add(self.leeway) {
            return Err(AuthError::TokenExpired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now)
        {
            return Err(AuthError::TokenNotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat.saturating_sub(self.leeway) > now)
        {
            return Err(AuthError::TokenIssuedInFuture);
        }
        Ok(())
    }

    /// Every claims rule; returns the user id.
    fn check(&self, claims: &Claims, now: i64) -> Result<String, AuthError> {
        let user_id = claims
            .string(&self.user_claim)
            .ok_or(AuthError::MissingClaim)?
            .to_string();
        self.check_time(claims, now)?;
        if !self.issuers.is_empty()
            && !claims
                .iss
                .as_ref()
                .is_some_and(|iss| self.issuers.contains(iss))
        {
            return Err(AuthError::InvalidIssuer);
        }
        if !self.audiences.is_empty() && !claims.aud.iter().any(|aud| self.audiences.contains(aud))
        {
            return Err(AuthError::InvalidAudience);
        }
        if !self.authorized_parties.is_empty() {
            match &claims.azp {
                Some(azp) if !self.authorized_parties.contains(azp) => {
                    return Err(AuthError::UnauthorizedParty);
                }
                None if self.require_azp => return Err(AuthError::UnauthorizedParty),
                _ => {}
            }
        }
        if !self.accept_pending && claims.sts.as_deref() == Some("pending") {
            return Err(AuthError::SessionPending);
        }
        Ok(user_id)
    }
}

/// Which key verified a token, so a cache hit can tell whether that key is still trusted.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `JWT_SECRET`.
    Secret,
    /// `JWT_PUBLIC_KEY`.
    Static,
    /// A JWKS key: the `kid` it was published under (`None`: the set's only key) and the key.
    Jwks(Option<String>, Arc<PublicKey>),
}

/// A token that passed every check.
#[derive(Debug)]
pub struct VerifiedToken {
    /// The user id from the configured user claim.
    pub user_id: String,
    /// The claims.
    pub claims: Claims,
    /// The organization, when the token carries one.
    pub org: Option<Org>,
    /// The key that verified it.
    pub key: KeySource,
}

/// Verifies tokens against the configured secret, static key and published JWKS.
pub struct Verifier {
    policy: Policy,
    secret: Option<DecodingKey>,
    static_key: Option<PublicKey>,
    keys: KeysHandle,
    cache: Option<TokenCache>,
    revocations: RevocationSet,
    clock: SharedClock,
    metrics: Metrics,
    retry_after_secs: u64,
}

impl Verifier {
    /// A verifier for the settings, reading keys through `keys`.
    pub fn new(
        settings: &Settings,
        keys: KeysHandle,
        revocations: RevocationSet,
        clock: SharedClock,
        metrics: Metrics,
    ) -> Verifier {
        Verifier {
            policy: Policy::from_settings(settings),
            secret: settings.secret.as_deref().map(DecodingKey::from_secret),
            static_key: settings.public_key.as_ref().map(|k| PublicKey {
                key: k.key.clone(),
                kind: k.kind,
                alg: None,
            }),
            keys,
            cache: (settings.token_cache_size > 0)
                .then(|| TokenCache::new(settings.token_cache_size)),
            revocations,
            clock,
            metrics,
            retry_after_secs: settings.cooldown.as_secs().clamp(1, 60),
        }
    }

    /// The published keys this verifier reads.
    pub fn keys(&self) -> &KeysHandle {
        &self.keys
    }

    /// The verified-token cache, when enabled.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// Verifies a token and every rule of the contract, including revocation.
    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        if token.len() > token::MAX_TOKEN_LEN {
            return Err(AuthError::MalformedToken);
        }
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(token) {
                if self.key_still_trusted(&hit) {
                    self.metrics.token_cache_hits.inc();
                    if let Err(e) = self.policy.check_time(&hit.claims, now) {
                        if e == AuthError::TokenExpired {
                            cache.remove(token);
                        }
                        return Err(e);
                    }
                    self.check_revoked(&hit)?;
                    return Ok(hit);
                }
                // The key rotated away or went stale: the token must not pass on the
                // strength of a key that is no longer trusted, so it is verified afresh.
                cache.remove(token);
            }
            self.metrics.token_cache_misses.inc();
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        if let Some(cache) = &self.cache {
            cache.insert(token, verified.clone());
        }
        self.check_revoked(&verified)?;
        Ok(verified)
    }

    async fn verify_uncached(&self, token: &str, now: i64) -> Result<VerifiedToken, AuthError> {
        let raw = token::parse(token)?;
        let alg = parse_algorithm(&raw.header.alg)
            .filter(|alg| self.policy.algorithms.contains(alg))
            .ok_or(AuthError::AlgorithmNotAllowed)?;
        let source = self.select_key(alg, raw.header.kid.as_deref()).await?;
        let key = match &source {
            KeySource::Secret => self.secret.as_ref(),
            KeySource::Static => self.static_key.as_ref().map(|k| &k.key),
            KeySource::Jwks(_, public) => Some(&public.key),
        }
        .ok_or(AuthError::AlgorithmNotAllowed)?;
        match jsonwebtoken::crypto::verify(raw.signature, raw.signing_input.as_bytes(), key, alg) {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::InvalidSignature),
            Err(e) if matches!(e.kind(), ErrorKind::Base64(_)) => {
                return Err(AuthError::MalformedToken);
            }
            Err(_) => return Err(AuthError::InvalidSignature),
        }
        let claims = Claims::from_payload(token::decode_payload(raw.payload)?)?;
        let user_id = self.policy.check(&claims, now)?;
        let org = Org::from_claims(&claims.all);
        Ok(VerifiedToken {
            user_id,
            claims,
            org,
            key: source,
        })
    }

    /// Chooses the key for `alg` and `kid`, binding algorithm families to key types.
    async fn select_key(&self, alg: Algorithm, kid: Option<&str>) -> Result<KeySource, AuthError> {
        if is_hmac(alg) {
            return match self.secret {
                Some(_) => Ok(KeySource::Secret),
                None => Err(AuthError::AlgorithmNotAllowed),
            };
        }
        let set = self.keys.current();
        let jwks_key = match kid {
            Some(kid) => set.get(kid).cloned(),
            None => set.only().cloned(),
        };
        if let Some(key) = jwks_key {
            return self.use_jwks_key(&set, kid, key, alg);
        }
        if let Some(static_key) = &self.static_key {
            return match static_key.accepts(alg) {
                true => Ok(KeySource::Static),
                false => Err(AuthError::AlgorithmNotAllowed),
            };
        }
        if !self.keys.has_jwks() {
            return Err(AuthError::UnknownKey);
        }
        let Some(kid) = kid else {
            return Err(if self.keys.is_stale(&set) {
                self.unavailable()
            } else {
                AuthError::UnknownKey
            });
        };
        drop(set);
        match self.keys.refresh_for(kid).await {
            RefreshOutcome::Found => {
                let set = self.keys.current();
                match set.get(kid).cloned() {
                    Some(key) => self.use_jwks_key(&set, Some(kid), key, alg),
                    None => Err(self.unavailable()),
                }
            }
            RefreshOutcome::NotFound => Err(AuthError::UnknownKey),
            RefreshOutcome::Unavailable => Err(self.unavailable()),
        }
    }

    fn use_jwks_key(
        &self,
        set: &KeySet,
        kid: Option<&str>,
        key: Arc<PublicKey>,
        alg: Algorithm,
    ) -> Result<KeySource, AuthError> {
        if self.keys.is_stale(set) {
            return Err(self.unavailable());
        }
        if !key.accepts(alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        Ok(KeySource::Jwks(kid.map(String::from), key))
    }

    /// Whether the key that verified a cached token is still the published one.
    fn key_still_trusted(&self, hit: &VerifiedToken) -> bool {
        let KeySource::Jwks(kid, key) = &hit.key else {
            return true;
        };
        let set = self.keys.current();
        let current = match kid {
            Some(kid) => set.get(kid),
            None => set.only(),
        };
        current.is_some_and(|c| Arc::ptr_eq(c, key)) && !self.keys.is_stale(&set)
    }

    fn check_revoked(&self, verified: &VerifiedToken) -> Result<(), AuthError> {
        match &verified.claims.sid {
            Some(sid) if self.revocations.is_revoked(sid) => Err(AuthError::TokenRevoked),
            _ => Ok(()),
        }
    }

    fn unavailable(&self) -> AuthError {
        AuthError::KeysUnavailable {
            retry_after: self.retry_after_secs,
        }
    }
}
