//! TEMPORARY STUB (replaced by the store branch).
use std::collections::HashSet;
use std::sync::Arc;
/// Stub.
#[derive(Clone, Default)]
pub struct RevocationSet(Arc<arc_swap::ArcSwap<HashSet<String>>>);
impl RevocationSet {
    /// Stub.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.0.load().contains(sid)
    }
}
/// Stub.
pub struct RevocationSync;
/// Stub.
pub fn spawn_revocation_sync(
    _store: super::Store,
    _set: RevocationSet,
    _interval: std::time::Duration,
) -> RevocationSync {
    RevocationSync
}
impl RevocationSet {
    /// Stub.
    pub fn insert(&self, sid: &str) {
        let mut s = (**self.0.load()).clone();
        s.insert(sid.to_string());
        self.0.store(Arc::new(s));
    }
}
