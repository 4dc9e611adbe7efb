//! Verification keys: the immutable [`KeySet`] snapshot the rotation actor publishes,
//! and the cheap [`KeysHandle`] requests read it through.
//!
//! Requests only ever `load` the published snapshot (lock-free) and read the negative
//! cache; the one exception is a token whose `kid` is unknown, which asks the actor.
//! Everything about fetching — single flight, cooldown, backoff — lives in
//! [`rotation`]; this module never fetches anything and never waits long: a request
//! waits at most [`MAX_REFRESH_WAIT`] for the actor's answer.

pub mod fetch;
pub mod jwks;
pub mod key;
pub mod rotation;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use arc_swap::ArcSwap;
use tokio::sync::watch;

pub use key::{KeyKind, PublicKey, SecretKey};

use crate::clock::SharedClock;

/// The longest a request waits for an unknown-`kid` refetch; past it the request is
/// answered `503 keys_unavailable` while the fetch goes on.
pub const MAX_REFRESH_WAIT: Duration = Duration::from_secs(1);

/// An immutable snapshot of the JWKS as last fetched, plus the fetch state requests need.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<PublicKey>>,
    /// The only key when the set has exactly one (for tokens without `kid`).
    only: Option<Arc<PublicKey>>,
    len: usize,
    /// Unix time of the last successful fetch; `None` until keys were loaded once.
    last_success: Option<u64>,
    /// Whether the most recent fetch attempt failed (the keys may then be stale).
    last_attempt_failed: bool,
    /// Why the most recent fetch failed (an HTTP status, a connection error), for the
    /// explanation of a `keys_unavailable` refusal.
    last_error: Option<Arc<str>>,
}

impl KeySet {
    /// The set after a successful fetch at `now`. Keys unchanged since `previous` keep
    /// their identity, so tokens cached against them stay cached across refreshes.
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
            last_error: None,
        }
    }

    /// The same keys, marked as after a fetch that failed with `error`.
    pub fn after_failure(&self, error: &str) -> KeySet {
        KeySet {
            by_kid: self.by_kid.clone(),
            only: self.only.clone(),
            len: self.len,
            last_success: self.last_success,
            last_attempt_failed: true,
            last_error: Some(Arc::from(error)),
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

    /// The published `kid`s, sorted (for diagnostics).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether keys were ever loaded.
    pub fn loaded(&self) -> bool {
        self.last_success.is_some()
    }

    /// Unix time of the last successful fetch.
    pub fn last_success(&self) -> Option<u64> {
        self.last_success
    }

    /// Why the most recent fetch failed, while it is the most recent.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether the most recent fetch failed.
    pub fn last_attempt_failed(&self) -> bool {
        self.last_attempt_failed
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
    /// The keys could not be fetched (or not in time): whether the token is good cannot be told.
    Unavailable,
}

/// Unknown `kid`s recently looked up and not found, remembered for the cooldown so that
/// a flood of one bad `kid` costs a map lookup. Bounded, so random `kid`s cannot grow it.
/// Only the actor writes it; requests read it.
pub struct NegativeCache {
    entries: quick_cache::sync::Cache<String, u64>,
    ttl_secs: u64,
}

impl NegativeCache {
    const CAPACITY: usize = 4096;

    pub(crate) fn new(ttl_secs: u64) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(Self::CAPACITY),
            ttl_secs,
        }
    }

    /// Whether `kid` was looked up and not found within the cooldown before `now`.
    pub fn contains(&self, kid: &str, now: u64) -> bool {
        self.ttl_secs > 0
            && self
                .entries
                .get(kid)
                .is_some_and(|at| now.saturating_sub(at) < self.ttl_secs)
    }

    pub(crate) fn insert(&self, kid: &str, now: u64) {
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
    loaded: watch::Receiver<bool>,
    clock: SharedClock,
    max_stale_secs: u64,
    /// The JWKS URL, named when keys are unavailable (it carries no secret).
    url: Option<Arc<str>>,
}

impl KeysHandle {
    /// A handle with no JWKS behind it (only static keys or a secret are configured).
    pub fn none(clock: SharedClock) -> KeysHandle {
        let (_, loaded) = watch::channel(true);
        KeysHandle {
            snapshot: Arc::new(ArcSwap::from_pointee(KeySet::default())),
            actor: None,
            negative: Arc::new(NegativeCache::new(0)),
            loaded,
            clock,
            max_stale_secs: u64::MAX,
            url: None,
        }
    }

    /// Where the JWKS stands, for the explanation of a `keys_unavailable` refusal:
    /// the URL and why its last fetch failed (the HTTP status or the connection
    /// error), or that no fetch has finished yet. `None` without a JWKS.
    pub fn fetch_state(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        let set = self.current();
        Some(match (set.last_error(), set.last_success()) {
            (Some(error), _) => format!("the last fetch of the JWKS at {url} failed: {error}"),
            (None, None) => format!("the first fetch of the JWKS at {url} has not finished"),
            (None, Some(at)) => {
                format!("the JWKS at {url} was last fetched at {at} (Unix time)")
            }
        })
    }

    /// Whether a JWKS is configured at all.
    pub fn has_jwks(&self) -> bool {
        self.actor.is_some()
    }

    /// The current snapshot (a lock-free load).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.snapshot.load()
    }

    /// Whether the JWKS keys are unusable now (never loaded or past `JWKS_MAX_STALE_SECS`).
    pub fn is_stale(&self, set: &KeySet) -> bool {
        self.actor.is_some() && set.is_stale(self.clock.unix_secs(), self.max_stale_secs)
    }

    /// Resolves once the keys were loaded (at once without a JWKS).
    pub async fn loaded(&self) {
        let mut loaded = self.loaded.clone();
        // The sender lives in the actor; if it is gone nothing will ever load.
        if loaded.wait_for(|done| *done).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Asks the actor for a key it may not have yet. The negative cache answers a `kid`
    /// that was just looked up and not found without a message; the actor decides
    /// everything else (one fetch for all waiters, the cooldown).
    pub async fn refresh_for(&self, kid: &str) -> RefreshOutcome {
        let Some(actor) = &self.actor else {
            return RefreshOutcome::NotFound;
        };
        if self.negative.contains(kid, self.clock.unix_secs()) {
            return if self.current().last_attempt_failed {
                RefreshOutcome::Unavailable
            } else {
                RefreshOutcome::NotFound
            };
        }
        let request = actor.send(rotation::RefreshFor {
            kid: kid.to_string(),
            cause: tracing::Span::current(),
        });
        match tokio::time::timeout(MAX_REFRESH_WAIT, request).await {
            Ok(Ok(outcome)) => outcome,
            // The actor is gone, or the fetch takes longer than a request may wait.
            Ok(Err(_)) | Err(_) => RefreshOutcome::Unavailable,
        }
    }
}
