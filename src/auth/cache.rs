//! The verified-token cache: a token that verified once is not verified
//! cryptographically again until it expires.
//!
//! Keys are SHA-256 digests of the token, so memory per entry does not grow with
//! token size and a forged string cannot collide with a cached one. Only tokens that
//! passed every check are inserted: a flood of bad tokens never grows the cache.
//! A hit is not trusted blindly; the verifier re-checks time, key and revocation.

use std::sync::Arc;

use aws_lc_rs::digest;

use super::verifier::VerifiedToken;

/// The cache key of a token.
pub type TokenDigest = [u8; 32];

/// A bounded concurrent map from token digest to its verification result.
pub struct TokenCache {
    entries: quick_cache::sync::Cache<TokenDigest, Arc<VerifiedToken>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The digest a token is cached under.
    pub fn digest(token: &str) -> TokenDigest {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        out
    }

    /// The cached result for a digest.
    pub fn get(&self, digest: &TokenDigest) -> Option<Arc<VerifiedToken>> {
        self.entries.get(digest)
    }

    /// Remembers a fully verified token.
    pub fn insert(&self, digest: TokenDigest, verified: Arc<VerifiedToken>) {
        self.entries.insert(digest, verified);
    }

    /// Forgets a token (its key went away or it expired).
    pub fn remove(&self, digest: &TokenDigest) {
        self.entries.remove(digest);
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
