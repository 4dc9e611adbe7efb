//! The verified-token cache: a token that verified once is not verified
//! cryptographically again until it expires.
//!
//! Entries are keyed by the token itself, hashed with a per-process random seed, so a
//! hit is an exact match of the whole token: no forged string can alias a cached one,
//! and no cryptographic digest is computed on the hot path. Only tokens that passed
//! every check are inserted, so a flood of bad tokens never grows the cache. A hit is
//! not trusted blindly; the verifier re-checks time, key and revocation.

use std::sync::Arc;

use super::verified::Verified;

/// A bounded concurrent map from token to its verification result.
pub struct TokenCache {
    entries: quick_cache::sync::Cache<Box<str>, Arc<Verified>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The cached result for a token.
    pub fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.entries.get(token)
    }

    /// Remembers a fully verified token.
    pub fn insert(&self, token: &str, verified: Arc<Verified>) {
        self.entries.insert(token.into(), verified);
    }

    /// Forgets a token (its key went away or it expired).
    pub fn remove(&self, token: &str) {
        self.entries.remove(token);
    }
}
