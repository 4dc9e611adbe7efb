//! Two observers as one: the core takes a single [`Observer`], and the service
//! reports to its metrics and to its just-in-time user rows, each in its own module.
//! The pair is generic so the request path pays no extra indirection for it.

use crate::observe::{BackendApiOutcome, JwksFetched};
use crate::{AuthError, AuthUser, Observer};

/// Passes every report to the first observer, then to the second.
pub(crate) struct Both<A, B>(pub(crate) A, pub(crate) B);

impl<A: Observer, B: Observer> Observer for Both<A, B> {
    fn authenticated(&self, outcome: Result<&AuthUser, &AuthError>) {
        self.0.authenticated(outcome);
        self.1.authenticated(outcome);
    }

    fn token_cache(&self, hit: bool) {
        self.0.token_cache(hit);
        self.1.token_cache(hit);
    }

    fn jwks_fetched(&self, fetch: &JwksFetched) {
        self.0.jwks_fetched(fetch);
        self.1.jwks_fetched(fetch);
    }

    fn backend_api_called(&self, outcome: BackendApiOutcome) {
        self.0.backend_api_called(outcome);
        self.1.backend_api_called(outcome);
    }
}
