//! `AuthUser`: who a verified token says the caller is, and the per-handler guards.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::AuthError;
use super::billing;
use super::claims::Claims;
use super::org::{Org, with_org_prefix};
use super::reverification::Reverification;
use super::token_type::TokenType;
use super::verified::Verified;

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

    /// A value the application derives from this token, made once per verified token
    /// by `init` and kept with it in the verified-token cache: every later request with
    /// the same token gets the same value without calling `init` again. One slot per
    /// token, so one type per application: `None` when the slot already holds a value
    /// of another type. Without the cache (`TOKEN_CACHE_SIZE=0`) the value lives as
    /// long as this request's `AuthUser`.
    ///
    /// For a value that must be renewed while the token lives (one that expires
    /// sooner), keep a cell that can be replaced, such as an `ArcSwap` or a `Mutex`.
    ///
    /// ```
    /// # use keygate_core as keygate;
    /// use keygate::AuthUser;
    ///
    /// struct Greeting(String);
    ///
    /// async fn hello(user: AuthUser) -> String {
    ///     match user.memo(|| Greeting(format!("Hello, {}", user.user_id()))) {
    ///         Some(greeting) => greeting.0.clone(),
    ///         None => format!("Hello, {}", user.user_id()),
    ///     }
    /// }
    /// # let _ = hello;
    /// ```
    pub fn memo<T: std::any::Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        self.0.memo.get_or_init(init)
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

    /// The user's and the active organization's plans: Clerk Billing's `pla` claim as
    /// the token carries it, a comma-separated list of scoped plans such as `u:free`
    /// or `o:pro,u:free`. `None` when the claim is absent, `null` or empty.
    pub fn plan(&self) -> Option<&str> {
        self.0.claims.pla()
    }

    /// The user's and the active organization's features: Clerk Billing's `fea` claim
    /// as the token carries it, e.g. `o:seats,u:export`. `None` when the claim is
    /// absent, `null` or empty.
    pub fn features(&self) -> Option<&str> {
        self.0.claims.fea()
    }

    /// Minutes since the user last verified their first and their second factor
    /// (Clerk's `fva` claim, fractions truncated), `-1` for a factor that is not
    /// enabled. `None` when the token has no `fva`, or one Clerk would not read (not
    /// two ages of `-1` or more).
    pub fn factor_verification_age(&self) -> Option<[i64; 2]> {
        let ages = self.0.claims.factor_ages()?;
        let valid = |age: f64| age.is_finite() && (age == -1.0 || age >= 0.0);
        // Saturating: an age beyond i64 minutes is "long ago" either way.
        ages.iter()
            .all(|age| valid(*age))
            .then(|| ages.map(|age| age.trunc() as i64))
    }

    /// Whether the user or the active organization has `plan`, as Clerk's
    /// `has({ plan })` decides: `pro` looks at both, `user:pro` (or `u:pro`) at the
    /// user's plans, `org:pro` (or `o:pro`, `organization:pro`) at the organization's.
    /// A `pla` claim with an element that has no scope grants nothing; so does a
    /// requirement with an unknown scope, an empty name or a second `:`.
    pub fn has_plan(&self, plan: &str) -> bool {
        billing::grants(self.plan(), plan)
    }

    /// Whether the user or the active organization has `feature` (the `fea` claim),
    /// read as [`has_plan`](AuthUser::has_plan) reads plans: `export`, `user:export`,
    /// `org:export`.
    pub fn has_feature(&self, feature: &str) -> bool {
        billing::grants(self.features(), feature)
    }

    /// Whether the user verified recently enough for `requirement`, as Clerk's
    /// `has({ reverification })` decides from `fva`. A token without `fva` never is.
    pub fn is_reverified(&self, requirement: Reverification) -> bool {
        requirement.is_met(self.0.claims.factor_ages())
    }

    /// `Ok` when [`has_plan`](AuthUser::has_plan), else `403 insufficient_permission`.
    ///
    /// ```
    /// # use keygate_core as keygate;
    /// use actix_web::HttpResponse;
    /// use keygate::{AuthError, AuthUser};
    ///
    /// async fn reports(user: AuthUser) -> Result<HttpResponse, AuthError> {
    ///     user.require_plan("pro")?; // the user's or the organization's Pro plan
    ///     Ok(HttpResponse::Ok().finish())
    /// }
    /// # let _ = reports;
    /// ```
    pub fn require_plan(&self, plan: &str) -> Result<(), AuthError> {
        if self.has_plan(plan) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// `Ok` when [`has_feature`](AuthUser::has_feature), else `403 insufficient_permission`.
    pub fn require_feature(&self, feature: &str) -> Result<(), AuthError> {
        if self.has_feature(feature) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// `Ok` when [`is_reverified`](AuthUser::is_reverified), else `403` with code
    /// `reverification_required` and Clerk's `clerk_error` object naming the
    /// requirement: a Next.js page that wraps its `fetch` in `useReverification()`
    /// shows Clerk's verification dialog and retries the request by itself.
    ///
    /// ```
    /// # use keygate_core as keygate;
    /// use actix_web::HttpResponse;
    /// use keygate::{AuthError, AuthUser, Reverification};
    ///
    /// async fn delete_account(user: AuthUser) -> Result<HttpResponse, AuthError> {
    ///     // The second factor verified less than 10 minutes ago.
    ///     user.require_reverification(Reverification::Strict)?;
    ///     Ok(HttpResponse::NoContent().finish())
    /// }
    /// # let _ = delete_account;
    /// ```
    pub fn require_reverification(&self, requirement: Reverification) -> Result<(), AuthError> {
        if self.is_reverified(requirement) {
            Ok(())
        } else {
            Err(AuthError::ReverificationRequired(requirement))
        }
    }
}
