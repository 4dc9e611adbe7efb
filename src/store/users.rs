//! TEMPORARY STUB (replaced by the store branch).
/// Stub.
#[derive(Clone)]
pub struct UserTracker;
impl UserTracker {
    /// Stub.
    pub fn seen(&self, _user_id: &str, _now: i64) {}
}
impl UserTracker {
    /// Stub.
    pub fn spawn(_store: super::Store) -> UserTracker {
        UserTracker
    }
}
