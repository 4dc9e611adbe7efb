//! What the core reports about its work, to whoever wants to count it.
//!
//! The core has no metrics registry and no logger of its own: it calls an
//! [`Observer`] (a no-op unless the application sets one with
//! [`AuthenticatorBuilder::observer`](crate::AuthenticatorBuilder::observer)) and emits
//! `tracing` events. keygate's server implements this trait with Prometheus metrics and
//! its just-in-time user rows. Every method is called on the request path or in the
//! rotation actor, so an implementation must be quick and must never block.

use std::sync::Arc;

use crate::{AuthError, AuthUser};

/// The outcome of one JWKS fetch, reported by the rotation actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksFetched {
    /// Whether the fetch succeeded (a failed one keeps the last good keys).
    pub ok: bool,
    /// Usable keys published after the fetch.
    pub keys: usize,
    /// Unix time of the last successful fetch, if any.
    pub last_success: Option<u64>,
}

/// A call to Clerk's Backend API to verify an opaque machine token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendApiOutcome {
    /// The API answered that the token is valid.
    Verified,
    /// The API refused the token.
    Refused,
    /// The API could not be reached or answered with an error.
    Failed,
}

/// Receives reports of authentication work. Every method has an empty default.
///
/// ```
/// # use keygate_core as keygate;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use keygate::{AuthError, AuthUser, Observer};
///
/// #[derive(Default)]
/// struct Counts {
///     ok: AtomicU64,
///     refused: AtomicU64,
/// }
///
/// impl Observer for Counts {
///     fn authenticated(&self, outcome: Result<&AuthUser, &AuthError>) {
///         let counter = if outcome.is_ok() { &self.ok } else { &self.refused };
///         counter.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Observer: Send + Sync + 'static {
    /// A token was verified (the user) or refused (why), once per request or
    /// [`Authenticator::verify`](crate::Authenticator::verify) call.
    fn authenticated(&self, outcome: Result<&AuthUser, &AuthError>) {
        let _ = outcome;
    }

    /// The verified-token cache was asked for a token: `true` for a hit.
    fn token_cache(&self, hit: bool) {
        let _ = hit;
    }

    /// The rotation actor finished a JWKS fetch.
    fn jwks_fetched(&self, fetch: &JwksFetched) {
        let _ = fetch;
    }

    /// An opaque machine token was checked with Clerk's Backend API.
    fn backend_api_called(&self, outcome: BackendApiOutcome) {
        let _ = outcome;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// The observer shared by every part of one authenticator.
pub type SharedObserver = Arc<dyn Observer>;
