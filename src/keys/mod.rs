//! Verification keys: the immutable [`KeySet`] snapshot the rotation actor publishes,
//! and the cheap [`KeysHandle`] requests read it through.
//!
//! Requests only ever `load` the published snapshot (lock-free); the one exception is
//! a token whose `kid` is unknown, which asks the actor for a refetch. This module
//! never fetches anything itself; that is [`fetch`] and [`rotation`].

pub mod fetch;
pub mod jwks;
pub mod rotation;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix::Addr;
use arc_swap::ArcSwap;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::clock::SharedClock;

/// The family of a public key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA: RS256/384/512 and PS256/384/512.
    Rsa,
    /// EC on P-256: ES256.
    EcP256,
    /// EC on P-384: ES384.
    EcP384,
    /// Ed25519: EdDSA.
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind may verify `alg`; an HS algorithm never matches a public key.
    pub fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }

    /// The curve of an EC key parsed from PEM, told by the length of its uncompressed point.
    pub fn of_ec_point(key: &DecodingKey) -> Option<KeyKind> {
        match key.try_get_as_bytes().ok()?.len() {
            65 => Some(KeyKind::EcP256),
            97 => Some(KeyKind::EcP384),
            _ => None,
        }
    }
}

/// One verification key with the constraints that bind it to algorithms.
#[derive(Clone)]
pub struct PublicKey {
    /// The key itself, ready for jsonwebtoken.
    pub key: DecodingKey,
    /// Its family.
    pub kind: KeyKind,
    /// The JWK's own `alg`, which a token's `alg` must then equal.
    pub alg: Option<Algorithm>,
}

impl PublicKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.accepts(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Whether both are the same key material under the same constraints.
    pub fn same_as(&self, other: &PublicKey) -> bool {
        use jsonwebtoken::DecodingKeyKind::{RsaModulusExponent, SecretOrDer};
        let same_material = match (self.key.kind(), other.key.kind()) {
            (SecretOrDer(a), SecretOrDer(b)) => a == b,
            (RsaModulusExponent { n: n1, e: e1 }, RsaModulusExponent { n: n2, e: e2 }) => {
                n1 == n2 && e1 == e2
            }
            _ => false,
        };
        same_material && self.kind == other.kind && self.alg == other.alg
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish()
    }
}

/// An immutable snapshot of the JWKS as last fetched, plus the fetch state requests need.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<PublicKey>>,
    /// The only key when the set has exactly one (for tokens without `kid`).
    only: Option<Arc<PublicKey>>,
    len: usize,
    /// Unix time of the last successful fetch; `None` until keys were loaded once.
    pub last_success: Option<u64>,
    /// Whether the most recent fetch attempt failed (the keys may then be stale).
    pub last_attempt_failed: bool,
}

impl KeySet {
    /// A loaded set from parsed keys, fetched successfully at `now`.
    pub fn new(keys: Vec<(Option<String>, PublicKey)>, now: u64) -> KeySet {
        Self::succeeding(&KeySet::default(), keys, now)
    }

    /// The set after a successful fetch. Keys unchanged since `previous` keep their
    /// identity, so tokens cached against them stay cached across refreshes.
    pub fn succeeding(
        previous: &KeySet,
        keys: Vec<(Option<String>, PublicKey)>,
        now: u64,
    ) -> KeySet {
        let len = keys.len();
        let mut by_kid = HashMap::with_capacity(len);
        let mut only = None;
        for (kid, key) in keys {
            let unchanged = match &kid {
                Some(kid) => previous.get(kid),
                None => previous.only(),
            }
            .filter(|old| old.same_as(&key));
            let key = match unchanged {
                Some(old) => old.clone(),
                None => Arc::new(key),
            };
            if len == 1 {
                only = Some(key.clone());
            }
            if let Some(kid) = kid {
                by_kid.insert(kid, key);
            }
        }
        KeySet {
            by_kid,
            only,
            len,
            last_success: Some(now),
            last_attempt_failed: false,
        }
    }

    /// The same keys, marked as after a failed fetch.
    pub fn after_failure(&self) -> KeySet {
        KeySet {
            by_kid: self.by_kid.clone(),
            only: self.only.clone(),
            len: self.len,
            last_success: self.last_success,
            last_attempt_failed: true,
        }
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<PublicKey>> {
        self.by_kid.get(kid)
    }

    /// Whether a key with this `kid` is published.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The key for a token without `kid`: the only one, when there is exactly one.
    pub fn only(&self) -> Option<&Arc<PublicKey>> {
        self.only.as_ref()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether keys were ever loaded.
    pub fn loaded(&self) -> bool {
        self.last_success.is_some()
    }

    /// Whether the keys are unusable at `now`: never loaded, or not refreshed
    /// successfully within `max_stale_secs`.
    pub fn is_stale(&self, now: u64, max_stale_secs: u64) -> bool {
        match self.last_success {
            None => true,
            Some(t) => now.saturating_sub(t) > max_stale_secs,
        }
    }
}

/// What the actor answers to "do you have this `kid`?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The key is now published.
    Found,
    /// A fresh, successful JWKS does not contain it.
    NotFound,
    /// The keys could not be fetched: whether the token is good cannot be told.
    Unavailable,
}

/// Counters shared by the actor, the handle and tests.
#[derive(Debug, Default)]
pub struct RotationStats {
    /// JWKS fetches that succeeded.
    pub fetch_ok: AtomicU64,
    /// JWKS fetches that failed.
    pub fetch_error: AtomicU64,
    /// Messages the actor received from requests (unknown `kid`s).
    pub messages: AtomicU64,
}

impl RotationStats {
    /// All fetch attempts so far.
    pub fn fetches(&self) -> u64 {
        self.fetch_ok.load(Ordering::Relaxed) + self.fetch_error.load(Ordering::Relaxed)
    }
}

/// Unknown `kid`s recently looked up and not found, remembered for the cooldown so that
/// a flood of one bad `kid` costs a map lookup. Bounded, so random `kid`s cannot grow it.
pub struct NegativeCache {
    entries: quick_cache::sync::Cache<String, u64>,
    ttl_secs: u64,
}

impl NegativeCache {
    const CAPACITY: usize = 4096;

    fn new(ttl_secs: u64) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(Self::CAPACITY),
            ttl_secs,
        }
    }

    fn contains(&self, kid: &str, now: u64) -> bool {
        self.ttl_secs > 0
            && self
                .entries
                .get(kid)
                .is_some_and(|at| now.saturating_sub(at) < self.ttl_secs)
    }

    fn insert(&self, kid: &str, now: u64) {
        if self.ttl_secs > 0 {
            self.entries.insert(kid.to_string(), now);
        }
    }
}

/// A cheap, cloneable view of the published keys, with a line to the rotation actor.
#[derive(Clone)]
pub struct KeysHandle {
    snapshot: Arc<ArcSwap<KeySet>>,
    actor: Option<Addr<rotation::KeyRotation>>,
    negative: Arc<NegativeCache>,
    inflight: Arc<Mutex<HashMap<String, PendingRefresh>>>,
    stats: Arc<RotationStats>,
    clock: SharedClock,
    max_stale_secs: u64,
}

type PendingRefresh = Shared<BoxFuture<'static, RefreshOutcome>>;

impl KeysHandle {
    /// A handle with no JWKS behind it (only static keys or a secret are configured).
    pub fn none(clock: SharedClock) -> KeysHandle {
        KeysHandle {
            snapshot: Arc::new(ArcSwap::from_pointee(KeySet::default())),
            actor: None,
            negative: Arc::new(NegativeCache::new(0)),
            inflight: Arc::default(),
            stats: Arc::default(),
            clock,
            max_stale_secs: u64::MAX,
        }
    }

    pub(crate) fn new(
        snapshot: Arc<ArcSwap<KeySet>>,
        actor: Addr<rotation::KeyRotation>,
        stats: Arc<RotationStats>,
        clock: SharedClock,
        cooldown_secs: u64,
        max_stale_secs: u64,
    ) -> KeysHandle {
        KeysHandle {
            snapshot,
            actor: Some(actor),
            negative: Arc::new(NegativeCache::new(cooldown_secs)),
            inflight: Arc::default(),
            stats,
            clock,
            max_stale_secs,
        }
    }

    /// Whether a JWKS is configured at all.
    pub fn has_jwks(&self) -> bool {
        self.actor.is_some()
    }

    /// The current snapshot (a lock-free load).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.snapshot.load()
    }

    /// The fetch counters.
    pub fn stats(&self) -> &Arc<RotationStats> {
        &self.stats
    }

    /// Whether the JWKS keys are unusable now (never loaded or past `JWKS_MAX_STALE_SECS`).
    pub fn is_stale(&self, set: &KeySet) -> bool {
        self.actor.is_some() && set.is_stale(self.clock.now(), self.max_stale_secs)
    }

    /// Asks the actor for a key it may not have yet; the negative cache answers a
    /// `kid` that was just looked up and not found without a message.
    pub async fn refresh_for(&self, kid: &str) -> RefreshOutcome {
        let Some(actor) = &self.actor else {
            return RefreshOutcome::NotFound;
        };
        let now = self.clock.now();
        if self.negative.contains(kid, now) {
            return if self.current().last_attempt_failed {
                RefreshOutcome::Unavailable
            } else {
                RefreshOutcome::NotFound
            };
        }
        // Requests waiting for the same kid share one message, so a burst of one
        // unknown kid reaches the actor once even before the negative cache is filled.
        let pending = {
            let mut inflight = self
                .inflight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match inflight.get(kid) {
                Some(pending) => pending.clone(),
                None => {
                    self.stats.messages.fetch_add(1, Ordering::Relaxed);
                    let request = actor.send(rotation::RefreshFor(kid.to_string()));
                    let pending =
                        async move { request.await.unwrap_or(RefreshOutcome::Unavailable) }
                            .boxed()
                            .shared();
                    inflight.insert(kid.to_string(), pending.clone());
                    pending
                }
            }
        };
        let outcome = pending.await;
        // Remember the miss before leaving the in-flight map, so no request slips between them.
        if outcome == RefreshOutcome::NotFound {
            self.negative.insert(kid, self.clock.now());
        }
        self.inflight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(kid);
        outcome
    }
}
