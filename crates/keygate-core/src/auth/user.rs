//! `AuthUser`: who a verified token says the caller is, and the per-handler guards.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::AuthError;
use super::claims::Claims;
use super::org::{Org, with_org_prefix};
use super::token_type::TokenType;
use super::verifier::Verified;

/// An authenticated caller: the handler argument that makes a route require a valid
/// token. Cheap to clone.
///
/// Taking `AuthUser` as an argument is the whole guard: without a valid token the
/// handler never runs and the client gets the contract's `401` (or `503` when the
/// keys cannot be had). `Option<AuthUser>` makes authentication optional.
///
/// ```
/// # use keygate_core as keygate;
/// use actix_web::{HttpResponse, web};
/// use keygate::AuthUser;
///
/// async fn profile(user: AuthUser) -> HttpResponse {
///     HttpResponse::Ok().json(serde_json::json!({
///         "user_id": user.user_id(),
///         "session_id": user.session_id(),
///     }))
/// }
///
/// async fn greeting(user: Option<AuthUser>) -> String {
///     match user {
///         Some(user) => format!("Hello, {}", user.user_id()),
///         None => "Hello, stranger".to_string(),
///     }
/// }
///
/// let routes = |cfg: &mut web::ServiceConfig| {
///     cfg.route("/profile", web::get().to(profile))
///         .route("/", web::get().to(greeting));
/// };
/// # let _ = routes;
/// ```
#[derive(Clone, Debug)]
pub struct AuthUser(pub(crate) Arc<Verified>);

impl AuthUser {
    /// The user id (the configured user claim, `sub` by default; for a machine token,
    /// its subject).
    pub fn user_id(&self) -> &str {
        // Verification made sure the claim is there, a non-empty string.
        match self.0.token_type {
            TokenType::SessionToken => self.0.claims.user(),
            _ => self.0.claims.sub(),
        }
        .unwrap_or_default()
    }

    /// The Clerk session id (`sid`), when present.
    pub fn session_id(&self) -> Option<&str> {
        self.0.claims.sid()
    }

    /// The verified claims: typed standard fields plus every claim as JSON.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The active organization (Clerk v1 or v2 claims), when there is one.
    pub fn org(&self) -> Option<&Org> {
        self.0
            .org
            .get_or_init(|| Org::from_claims(self.0.claims.as_map()))
            .as_ref()
    }

    /// What kind of token authenticated the caller.
    pub fn token_type(&self) -> TokenType {
        self.0.token_type
    }

    /// The scopes of an OAuth access token or machine token (empty for sessions).
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// The claims as the application's own type, e.g. the custom claims of a Clerk
    /// session-token template. A token whose claims do not fit the type is refused
    /// like one that lacks a required claim (`401 missing_claim`).
    ///
    /// ```
    /// # use keygate_core as keygate;
    /// use actix_web::HttpResponse;
    /// use keygate::{AuthError, AuthUser};
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct Plan {
    ///     plan: String,
    ///     #[serde(default)]
    ///     seats: u32,
    /// }
    ///
    /// async fn billing(user: AuthUser) -> Result<HttpResponse, AuthError> {
    ///     let plan: Plan = user.claims_as()?;
    ///     Ok(HttpResponse::Ok().json(serde_json::json!({"plan": plan.plan, "seats": plan.seats})))
    /// }
    /// # let _ = billing;
    /// ```
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, AuthError> {
        T::deserialize(self.0.claims.as_json()).map_err(|e| {
            tracing::debug!("claims do not fit the application's type: {e}");
            AuthError::MissingClaim
        })
    }

    /// `Ok` when the user's active organization role is `role` (`admin` or `org:admin`),
    /// else `403 insufficient_permission`.
    ///
    /// ```
    /// # use keygate_core as keygate;
    /// use actix_web::HttpResponse;
    /// use keygate::{AuthError, AuthUser};
    ///
    /// async fn settings(user: AuthUser) -> Result<HttpResponse, AuthError> {
    ///     user.require_org_role("admin")?;
    ///     Ok(HttpResponse::NoContent().finish())
    /// }
    /// # let _ = settings;
    /// ```
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

    /// `Ok` when the token grants `scope` (OAuth `scp`/`scope`, or a machine token's
    /// scopes), else `403 insufficient_permission`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.scopes().iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }
}
