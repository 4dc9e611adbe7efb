//! Revoked sessions, as the verifier asks about them.

/// Tells whether a session was revoked; asked for every token that carries a `sid`,
/// on the request path, so an implementation must answer from memory.
///
/// keygate's server implements it with a set kept in step with its database (and
/// Clerk's `session.*` webhooks). Any `Fn(&str) -> bool` closure is one too.
///
/// ```
/// # use keygate_core as keygate;
/// use std::collections::HashSet;
/// use std::sync::{Arc, RwLock};
/// use keygate::RevocationCheck;
///
/// #[derive(Clone, Default)]
/// struct Revoked(Arc<RwLock<HashSet<String>>>);
///
/// impl RevocationCheck for Revoked {
///     fn is_revoked(&self, session_id: &str) -> bool {
///         self.0.read().map(|set| set.contains(session_id)).unwrap_or(false)
///     }
/// }
/// ```
pub trait RevocationCheck: Send + Sync + 'static {
    /// Whether tokens of `session_id` must be refused.
    fn is_revoked(&self, session_id: &str) -> bool;
}

impl<F> RevocationCheck for F
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    fn is_revoked(&self, session_id: &str) -> bool {
        self(session_id)
    }
}
