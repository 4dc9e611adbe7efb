//! The verifier: algorithm policy, key choice, signature and claims policy, built once
//! at start.
//!
//! It reads the published key snapshot without locks; only a token with an unknown
//! `kid` waits for the rotation actor. An HS token is only ever checked against the
//! shared secret, an asymmetric one only against public keys of the matching family,
//! so key-confusion attacks have nothing to work with. It never logs a token.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::cache::TokenCache;
use super::claims::Claims;
use super::classify::{Opaque, classify};
use super::error::Rejection;
use super::machine::MachineTokens;
use super::policy::Policy;
use super::token_type::{TokenType, TokenTypes};
use super::verified::{KeySource, Verified};
use super::{AuthError, token};
use crate::clock::SharedClock;
use crate::keys::{KeySet, KeysHandle, PublicKey, RefreshOutcome, SecretKey};
use crate::observe::SharedObserver;
use crate::revocation::RevocationCheck;

/// Verifies tokens against the configured secret, static key and published JWKS.
pub struct Verifier {
    pub(crate) policy: Policy,
    pub(crate) secret: Option<SecretKey>,
    pub(crate) static_key: Option<Arc<PublicKey>>,
    pub(crate) keys: KeysHandle,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) machine: Option<MachineTokens>,
    pub(crate) revocations: Option<Arc<dyn RevocationCheck>>,
    pub(crate) clock: SharedClock,
    pub(crate) observer: SharedObserver,
    pub(crate) retry_after_secs: u64,
}

impl Verifier {
    /// The published keys this verifier reads.
    pub fn keys(&self) -> &KeysHandle {
        &self.keys
    }

    /// Verifies a token of one of the `accepts` types and every rule of the contract,
    /// including revocation.
    pub async fn verify(
        &self,
        token: &str,
        accepts: TokenTypes,
    ) -> Result<Arc<Verified>, Rejection> {
        if token.len() > token::MAX_TOKEN_LEN {
            return Err(Rejection::new(
                AuthError::MalformedToken,
                "the token is longer than 16384 characters",
            ));
        }
        if let Some(kind) = Opaque::of(token) {
            return self.verify_opaque(kind, token, accepts).await;
        }
        let now = i64::try_from(self.clock.unix_secs()).unwrap_or(i64::MAX);
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(token) {
                if self.key_still_trusted(&hit) {
                    self.observer.token_cache(true);
                    check_accepted(hit.token_type, accepts)?;
                    if let Err(e) = self.policy.check_time(&hit.claims, now) {
                        if e.error == AuthError::TokenExpired {
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
            self.observer.token_cache(false);
        }
        let verified = Arc::new(self.verify_uncached(token, accepts, now).await?);
        if let Some(cache) = &self.cache {
            cache.insert(token, verified.clone());
        }
        self.check_revoked(&verified)?;
        Ok(verified)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        accepts: TokenTypes,
        now: i64,
    ) -> Result<Verified, Rejection> {
        let raw = token::parse(token)?;
        let claims = Claims::parse(token::decode_payload(raw.payload)?, &self.policy.user_claim)?;
        // Decided before any key is looked for: a token this route does not take costs
        // no signature check, and an unknown kid on it no refetch.
        let token_type = classify(&raw.header, &claims, self.policy.accept_templates)?;
        check_accepted(token_type, accepts)?;
        let mut buf = [0u8; 1024];
        let signature = token::decode_signature(raw.signature, &mut buf).ok_or_else(|| {
            Rejection::new(
                AuthError::MalformedToken,
                "the JWT signature (third segment) is not base64url",
            )
        })?;
        let alg = self.allowed_algorithm(&raw.header.alg)?;
        let source = self.select_key(alg, raw.header.kid.as_deref()).await?;
        let message = raw.signing_input.as_bytes();
        let valid = match &source {
            KeySource::Secret => self
                .secret
                .as_ref()
                .is_some_and(|s| s.verify(alg, message, signature)),
            KeySource::Static => self
                .static_key
                .as_ref()
                .is_some_and(|k| k.verify(alg, message, signature)),
            KeySource::Jwks(_, key) => key.verify(alg, message, signature),
            KeySource::BackendApi => false,
        };
        if !valid {
            return Err(Rejection::new(
                AuthError::InvalidSignature,
                format!(
                    "the {alg:?} signature does not verify with {}",
                    describe(&source)
                ),
            ));
        }
        self.policy.check(&claims, token_type, now)?;
        let scopes = scopes(&claims, token_type);
        Ok(Verified {
            claims,
            org: OnceLock::new(),
            token_type,
            scopes,
            key: source,
            memo: Default::default(),
        })
    }

    async fn verify_opaque(
        &self,
        kind: Opaque,
        token: &str,
        accepts: TokenTypes,
    ) -> Result<Arc<Verified>, Rejection> {
        check_accepted(kind.token_type(), accepts)?;
        let Some(machine) = &self.machine else {
            return Err(Rejection::new(
                AuthError::TokenTypeNotAccepted,
                format!(
                    "a {} can only be checked with Clerk's Backend API, and CLERK_SECRET_KEY is not set",
                    kind.token_type()
                ),
            ));
        };
        let verified = machine.verify(kind, token).await?;
        let now = i64::try_from(self.clock.unix_secs()).unwrap_or(i64::MAX);
        self.policy.check_machine(&verified.claims, now)?;
        Ok(verified)
    }

    /// The token's `alg`, when the allow-list has it.
    fn allowed_algorithm(&self, name: &str) -> Result<Algorithm, Rejection> {
        match Algorithm::from_str(name) {
            Ok(alg) if self.policy.algorithms.contains(&alg) => Ok(alg),
            _ => Err(Rejection::new(
                AuthError::AlgorithmNotAllowed,
                format!(
                    "expected alg in [{}] (JWT_ALGORITHMS), the token has {:?}",
                    algorithm_list(&self.policy.algorithms),
                    name.chars().take(32).collect::<String>()
                ),
            )),
        }
    }

    /// Picks the key for an allowed algorithm: the secret for HS, else the JWKS key
    /// named by `kid` (refetching once for an unknown one), else the static key.
    async fn select_key(&self, alg: Algorithm, kid: Option<&str>) -> Result<KeySource, Rejection> {
        if alg.family() == AlgorithmFamily::Hmac {
            return match &self.secret {
                Some(secret) if secret.accepts(alg) => Ok(KeySource::Secret),
                _ => Err(Rejection::new(
                    AuthError::AlgorithmNotAllowed,
                    format!("{alg:?} needs JWT_SECRET, which is not set"),
                )),
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
            return if static_key.accepts(alg) {
                Ok(KeySource::Static)
            } else {
                Err(Rejection::new(
                    AuthError::AlgorithmNotAllowed,
                    format!(
                        "{alg:?} does not fit the {} key of JWT_PUBLIC_KEY",
                        static_key.kind().name()
                    ),
                ))
            };
        }
        if !self.keys.has_jwks() {
            return Err(Rejection::new(
                AuthError::UnknownKey,
                format!("{alg:?} needs a public key, and none is configured"),
            ));
        }
        let Some(kid) = kid else {
            return Err(if self.keys.is_stale(&set) {
                self.unavailable("the signing keys are not loaded or are stale")
            } else {
                Rejection::new(
                    AuthError::UnknownKey,
                    format!(
                        "the token has no kid and the JWKS has {} keys, not exactly one (kids: [{}])",
                        set.len(),
                        set.kids().join(", ")
                    ),
                )
            });
        };
        drop(set);
        match self.keys.refresh_for(kid).await {
            RefreshOutcome::Found => {
                let set = self.keys.current();
                match set.get(kid).cloned() {
                    Some(key) => self.use_jwks_key(&set, Some(kid), key, alg),
                    None => Err(self.unavailable("the key was published and removed again")),
                }
            }
            RefreshOutcome::NotFound => {
                let set = self.keys.current();
                Err(Rejection::new(
                    AuthError::UnknownKey,
                    format!(
                        "no JWKS key has kid {:?}; known kids: [{}]",
                        kid.chars().take(64).collect::<String>(),
                        set.kids().join(", ")
                    ),
                ))
            }
            RefreshOutcome::Unavailable => Err(self.unavailable(
                "the token's kid is unknown and the JWKS could not be fetched in time",
            )),
        }
    }

    fn use_jwks_key(
        &self,
        set: &KeySet,
        kid: Option<&str>,
        key: Arc<PublicKey>,
        alg: Algorithm,
    ) -> Result<KeySource, Rejection> {
        if self.keys.is_stale(set) {
            return Err(self.unavailable(
                "no successful JWKS fetch within JWKS_MAX_STALE_SECS: the keys are stale",
            ));
        }
        if !key.accepts(alg) {
            return Err(Rejection::new(
                AuthError::AlgorithmNotAllowed,
                format!(
                    "{alg:?} does not fit the {} key{} of kid {:?}",
                    key.kind().name(),
                    key.own_alg()
                        .map(|own| format!(" (its alg is {own:?})"))
                        .unwrap_or_default(),
                    kid.unwrap_or("<none>")
                ),
            ));
        }
        Ok(KeySource::Jwks(kid.map(String::from), key))
    }

    /// Whether the key that verified a cached token is still the published one.
    fn key_still_trusted(&self, hit: &Verified) -> bool {
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

    fn check_revoked(&self, verified: &Verified) -> Result<(), Rejection> {
        match (&self.revocations, verified.claims.sid()) {
            (Some(revocations), Some(sid)) if revocations.is_revoked(sid) => Err(Rejection::new(
                AuthError::TokenRevoked,
                "the token's session (sid) was revoked",
            )),
            _ => Ok(()),
        }
    }

    /// A `keys_unavailable` refusal whose explanation ends with the JWKS URL and why
    /// its last fetch failed, so a wrong `JWKS_URL` is visible in the last line.
    fn unavailable(&self, reason: &'static str) -> Rejection {
        let error = AuthError::KeysUnavailable {
            retry_after: self.retry_after_secs,
        };
        match self.keys.fetch_state() {
            Some(state) => Rejection::new(error, format!("{reason}; {state}")),
            None => Rejection::new(error, reason),
        }
    }
}

fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Secret => "JWT_SECRET".to_string(),
        KeySource::Static => "JWT_PUBLIC_KEY".to_string(),
        KeySource::Jwks(Some(kid), _) => format!("the JWKS key {kid:?}"),
        KeySource::Jwks(None, _) => "the JWKS's only key".to_string(),
        KeySource::BackendApi => "Clerk's Backend API".to_string(),
    }
}

fn check_accepted(token_type: TokenType, accepts: TokenTypes) -> Result<(), Rejection> {
    if accepts.contains(token_type) {
        return Ok(());
    }
    Err(Rejection::new(
        AuthError::TokenTypeNotAccepted,
        format!("a {token_type} is not accepted here (accepted: {accepts:?})"),
    ))
}

/// A machine token's scopes: OAuth's `scp` array or space-separated `scope`; an M2M
/// token's space-separated `scopes`.
fn scopes(claims: &Claims, token_type: TokenType) -> Vec<String> {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    match token_type {
        TokenType::SessionToken => Vec::new(),
        _ => {
            if let Some(Value::Array(list)) = claims.get("scp") {
                return list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect();
            }
            claims
                .get("scope")
                .or_else(|| claims.get("scopes"))
                .and_then(Value::as_str)
                .map(words)
                .unwrap_or_default()
        }
    }
}

/// `RS256, HS256` for messages.
pub(crate) fn algorithm_list(algorithms: &[Algorithm]) -> String {
    algorithms
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
