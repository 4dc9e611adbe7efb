//! `AuthUser`: the Actix extractor that turns a request's token into a verified user.
//!
//! It reads the verifier's published state only; the result is kept in the request's
//! extensions so a guard middleware and the handler never verify the same request twice.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::claims::{Claims, Org, with_org_prefix};
use super::verifier::{VerifiedToken, Verifier};
use super::{AuthError, token};
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::store::users::UserTracker;

/// What the extractor needs, shared by every worker as `web::Data<AuthState>`.
pub struct AuthState {
    /// The verifier.
    pub verifier: Verifier,
    /// `JWT_COOKIE_NAME`.
    pub cookie_name: Option<String>,
    /// Just-in-time user rows, when a database is configured.
    pub users: Option<UserTracker>,
    /// Metrics.
    pub metrics: Metrics,
    /// Clock.
    pub clock: SharedClock,
}

impl AuthState {
    /// Authenticates a request, recording the outcome.
    pub async fn authenticate(
        &self,
        token: Result<String, AuthError>,
    ) -> Result<AuthUser, AuthError> {
        let result = match token {
            Ok(token) => self.verifier.verify(&token).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(verified) => {
                self.metrics.auth_ok.inc();
                if let Some(users) = &self.users {
                    users.seen(
                        &verified.user_id,
                        i64::try_from(self.clock.now()).unwrap_or(i64::MAX),
                    );
                }
                Ok(AuthUser(verified))
            }
            Err(e) => {
                self.metrics.auth_total.with_label_values(&[e.code()]).inc();
                log::debug!("token rejected: {}", e.code());
                Err(e)
            }
        }
    }
}

/// An authenticated user: the handler argument that makes a route require a valid token.
#[derive(Clone, Debug)]
pub struct AuthUser(Arc<VerifiedToken>);

impl AuthUser {
    /// The user id (the configured user claim, `sub` by default).
    pub fn user_id(&self) -> &str {
        &self.0.user_id
    }

    /// The Clerk session id (`sid`), when present.
    pub fn session_id(&self) -> Option<&str> {
        self.0.claims.sid.as_deref()
    }

    /// The verified claims: typed standard fields plus every claim as JSON.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The active organization (Clerk v1 or v2 claims), when there is one.
    pub fn org(&self) -> Option<&Org> {
        self.0.org.as_ref()
    }

    /// `Ok` when the user's active organization role is `role` (`admin` or `org:admin`),
    /// else `403 insufficient_permission`.
    pub fn require_org_role(&self, role: &str) -> Result<(), AuthError> {
        let wanted = with_org_prefix(role);
        match self.org().and_then(|o| o.role.as_deref()) {
            Some(actual) if actual == wanted => Ok(()),
            _ => Err(AuthError::Forbidden),
        }
    }

    /// `Ok` when the active organization grants `permission` (e.g. `org:invoices:read`),
    /// else `403 insufficient_permission`.
    pub fn require_permission(&self, permission: &str) -> Result<(), AuthError> {
        match self.org() {
            Some(org) if org.has_permission(permission) => Ok(()),
            _ => Err(AuthError::Forbidden),
        }
    }
}

impl FromRequest for AuthUser {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(user) = req.extensions().get::<AuthUser>() {
            return Box::pin(ready(Ok(user.clone())));
        }
        let Some(state) = req.app_data::<web::Data<AuthState>>().cloned() else {
            log::error!("AuthUser used in an app without AuthState: every request is refused");
            return Box::pin(ready(Err(AuthError::KeysUnavailable { retry_after: 60 })));
        };
        let token = token::extract(req, state.cookie_name.as_deref());
        let req = req.clone();
        Box::pin(async move {
            let user = state.authenticate(token).await?;
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}
