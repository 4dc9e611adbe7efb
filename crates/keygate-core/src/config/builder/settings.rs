//! The settings of an [`AuthenticatorBuilder`]: a plain record of what was set, with
//! the variable each value came from (an alias, when that was used) so that
//! validation names it. Nothing here checks a value; `validate.rs` does, all at once.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::auth::token_type::{TokenType, TokenTypes};
use crate::clock::{self, SharedClock};
use crate::observe::{NoObserver, Observer, SharedObserver};
use crate::revocation::RevocationCheck;

/// A value and the variable it came from (an alias, when that was used).
#[derive(Clone)]
pub(super) struct Named<T> {
    pub(super) var: &'static str,
    pub(super) value: T,
}

fn named<T>(var: &'static str, value: T) -> Option<Named<T>> {
    Some(Named { var, value })
}

/// Builds an [`Authenticator`](crate::Authenticator): where keys come from and what a token must satisfy.
///
/// Every setting has the default of the environment variable named in its doc; the
/// same checks run as for the environment, and a [`ConfigError`](crate::ConfigError) names that variable.
/// [`build`](AuthenticatorBuilder::build) must be called inside an actix-web runtime
/// (`#[actix_web::main]`): it starts the key-rotation actor there.
///
/// ```no_run
/// # use keygate_core as keygate;
/// use std::time::Duration;
/// use actix_web::{App, HttpServer, web};
/// use keygate::{Authenticator, AuthUser};
///
/// async fn hello(user: AuthUser) -> String {
///     format!("Hello, user {}", user.user_id())
/// }
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let auth = Authenticator::builder()
///         .clerk_publishable_key("pk_live_Y2xlcmsuZXhhbXBsZS5jb20k")
///         .authorized_parties(["https://app.example.com"])
///         .leeway(Duration::from_secs(5))
///         .build()
///         .map_err(std::io::Error::other)?;
///     HttpServer::new(move || {
///         App::new()
///             .app_data(auth.clone())
///             .route("/hello", web::get().to(hello))
///     })
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// }
/// ```
#[must_use]
#[derive(Clone)]
pub struct AuthenticatorBuilder {
    pub(super) jwks_url: Option<Named<String>>,
    pub(super) publishable_key: Option<Named<String>>,
    pub(super) secret_key: Option<String>,
    pub(super) api_url: Option<String>,
    pub(super) secret: Option<Named<Vec<u8>>>,
    pub(super) public_key_pem: Option<Named<String>>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
    pub(super) issuers: Vec<String>,
    pub(super) audiences: Vec<String>,
    pub(super) authorized_parties: Named<Vec<String>>,
    pub(super) require_azp: bool,
    pub(super) accept_pending: bool,
    pub(super) accept_templates: bool,
    pub(super) oauth_audience: Option<String>,
    pub(super) leeway: Duration,
    pub(super) user_claim: String,
    pub(super) cookie_name: Option<String>,
    pub(super) token_cache_size: usize,
    pub(super) refresh_interval: Duration,
    pub(super) cooldown: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) max_stale: Duration,
    pub(super) accepts: TokenTypes,
    pub(super) revocations: Option<Arc<dyn RevocationCheck>>,
    pub(super) observer: SharedObserver,
    pub(super) clock: SharedClock,
}

impl Default for AuthenticatorBuilder {
    fn default() -> Self {
        AuthenticatorBuilder {
            jwks_url: None,
            publishable_key: None,
            secret_key: None,
            api_url: None,
            secret: None,
            public_key_pem: None,
            algorithms: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            authorized_parties: Named {
                var: "JWT_AUTHORIZED_PARTIES",
                value: Vec::new(),
            },
            require_azp: true,
            accept_pending: false,
            accept_templates: false,
            oauth_audience: None,
            leeway: Duration::from_secs(5),
            user_claim: "sub".into(),
            cookie_name: Some("__session".into()),
            token_cache_size: 10_000,
            refresh_interval: Duration::from_secs(300),
            cooldown: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(86_400),
            accepts: TokenTypes::SESSION,
            revocations: None,
            observer: Arc::new(NoObserver),
            clock: clock::system(),
        }
    }
}

impl std::fmt::Debug for AuthenticatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("jwks_url", &self.jwks_url.as_ref().map(|n| &n.value))
            .field(
                "publishable_key",
                &self.publishable_key.as_ref().map(|n| &n.value),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[redacted]"),
            )
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("algorithms", &self.algorithms)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("authorized_parties", &self.authorized_parties.value)
            .finish_non_exhaustive()
    }
}

impl AuthenticatorBuilder {
    /// A builder with every default (no key source yet).
    pub fn new() -> AuthenticatorBuilder {
        AuthenticatorBuilder::default()
    }

    /// `JWKS_URL`: a remote JWKS, e.g. `https://<clerk-frontend-api>/.well-known/jwks.json`.
    pub fn jwks_url(self, url: impl Into<String>) -> Self {
        self.jwks_url_from("JWKS_URL", url.into())
    }

    pub(crate) fn jwks_url_from(mut self, var: &'static str, url: String) -> Self {
        self.jwks_url = named(var, url);
        self
    }

    /// `CLERK_PUBLISHABLE_KEY`: derives the JWKS URL (`https://<host>/.well-known/jwks.json`)
    /// and the issuer (`https://<host>`) unless they are set explicitly.
    pub fn clerk_publishable_key(self, key: impl Into<String>) -> Self {
        self.clerk_publishable_key_from("CLERK_PUBLISHABLE_KEY", key.into())
    }

    pub(crate) fn clerk_publishable_key_from(mut self, var: &'static str, key: String) -> Self {
        self.publishable_key = named(var, key);
        self
    }

    /// `CLERK_SECRET_KEY`: keys come from Clerk's Backend API JWKS when no JWKS URL is
    /// given or derived; the secret is sent to that API only.
    pub fn clerk_secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// `CLERK_API_URL` (default `https://api.clerk.com`).
    pub fn clerk_api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// `JWT_SECRET`: the shared secret of HS256/384/512, at least 32 bytes, used as given.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = named("JWT_SECRET", secret.as_ref().to_vec());
        self
    }

    /// `JWT_PUBLIC_KEY`: a PEM public key for networkless verification; it checks tokens
    /// whatever their `kid` unless the `kid` names a JWKS key.
    pub fn public_key_pem(self, pem: impl AsRef<str>) -> Self {
        self.public_key_pem_from("JWT_PUBLIC_KEY", pem.as_ref().to_string())
    }

    pub(crate) fn public_key_pem_from(mut self, var: &'static str, pem: String) -> Self {
        self.public_key_pem = named(var, pem);
        self
    }

    /// `JWT_ALGORITHMS`: the allow-list (default `RS256` for public keys, plus `HS256`
    /// with a secret).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = crate::Algorithm>) -> Self {
        let mut list: Vec<Algorithm> = Vec::new();
        for alg in algorithms.into_iter().map(crate::Algorithm::jwt) {
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        self.algorithms = Some(list);
        self
    }

    /// `JWT_ISSUER`: the allowed `iss` values (not checked when empty).
    pub fn issuers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// `JWT_AUDIENCE`: when set, `aud` (string or array) must contain one of these.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// `JWT_AUTHORIZED_PARTIES`: the allowed `azp` origins (not checked when empty).
    pub fn authorized_parties<I, S>(self, parties: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authorized_parties_from(
            "JWT_AUTHORIZED_PARTIES",
            parties.into_iter().map(Into::into).collect(),
        )
    }

    pub(crate) fn authorized_parties_from(
        mut self,
        var: &'static str,
        parties: Vec<String>,
    ) -> Self {
        self.authorized_parties = Named {
            var,
            value: parties,
        };
        self
    }

    /// `JWT_REQUIRE_AZP` (default `true`, as Clerk's `verifyToken`): with authorized
    /// parties set, refuse a session token without `azp`.
    pub fn require_azp(mut self, require: bool) -> Self {
        self.require_azp = require;
        self
    }

    /// `JWT_ACCEPT_PENDING`: accept Clerk sessions with `sts: pending`.
    pub fn accept_pending(mut self, accept: bool) -> Self {
        self.accept_pending = accept;
        self
    }

    /// `JWT_ACCEPT_TEMPLATES`: accept Clerk JWT-template tokens (`cat` `cl_B7d4PD222AAA`)
    /// as session tokens.
    pub fn accept_templates(mut self, accept: bool) -> Self {
        self.accept_templates = accept;
        self
    }

    /// `OAUTH_AUDIENCE`: the audience an OAuth access token must carry, also the
    /// `resource` of the protected-resource metadata (RFC 9728).
    pub fn oauth_audience(mut self, audience: impl Into<String>) -> Self {
        self.oauth_audience = Some(audience.into());
        self
    }

    /// `JWT_LEEWAY_SECS`: clock skew allowed for `exp`, `nbf`, `iat` (whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// `JWT_USER_CLAIM`: the claim that holds the user id (default `sub`).
    pub fn user_claim(mut self, claim: impl Into<String>) -> Self {
        self.user_claim = claim.into();
        self
    }

    /// `JWT_COOKIE_NAME`: the cookie read when there is no `Authorization` header
    /// (default `__session`; `None` disables cookies).
    pub fn cookie_name(mut self, name: Option<&str>) -> Self {
        self.cookie_name = name.map(String::from);
        self
    }

    /// `TOKEN_CACHE_SIZE`: verified tokens remembered (default 10 000; 0 disables).
    pub fn token_cache_size(mut self, entries: usize) -> Self {
        self.token_cache_size = entries;
        self
    }

    /// `JWKS_REFRESH_SECS`: the periodic refresh interval (default 300 s, at least 1 s).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// `JWKS_COOLDOWN_SECS`: the minimum gap between refetches for unknown `kid`s (default 10 s).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// `JWKS_TIMEOUT_SECS`: the timeout of one JWKS fetch (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// `JWKS_MAX_STALE_SECS`: how long keys keep serving while every fetch fails
    /// (default one day).
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// `JWT_ACCEPT_TOKENS`: the token types accepted (default session tokens only).
    pub fn accepts(mut self, types: impl IntoIterator<Item = TokenType>) -> Self {
        self.accepts = TokenTypes::of(types);
        self
    }

    /// Which sessions are revoked; asked for every token with a `sid`.
    pub fn revocations(mut self, check: impl RevocationCheck) -> Self {
        self.revocations = Some(Arc::new(check));
        self
    }

    /// Where reports of authentication work go (metrics, audit); none by default.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Arc::new(observer);
        self
    }

    /// The clock for expiry, the JWKS schedule, cooldown and backoff (the system clock
    /// by default; tests pass a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether any key source is set (a JWKS URL, a Clerk key, a public key or a
    /// secret): without one, [`AuthenticatorBuilder::build`] refuses.
    pub fn has_key_source(&self) -> bool {
        self.jwks_url.is_some()
            || self.publishable_key.is_some()
            || self.secret_key.is_some()
            || self.public_key_pem.is_some()
            || self.secret.is_some()
    }

    /// The audiences set so far (for tools that mint tokens for this policy).
    pub fn configured_audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The authorized parties set so far.
    pub fn configured_authorized_parties(&self) -> &[String] {
        &self.authorized_parties.value
    }

    /// The user claim set so far.
    pub fn configured_user_claim(&self) -> &str {
        &self.user_claim
    }

    /// The timeout of one JWKS fetch set so far.
    pub fn configured_fetch_timeout(&self) -> Duration {
        self.fetch_timeout
    }

    /// The variable the allowed `azp` origins came from (`JWT_AUTHORIZED_PARTIES` or
    /// its alias), for messages about them.
    pub fn authorized_parties_variable(&self) -> &'static str {
        self.authorized_parties.var
    }

    /// The algorithm allow-list set so far (`None`: the default).
    pub fn configured_algorithms(&self) -> Option<Vec<crate::Algorithm>> {
        self.algorithms.as_ref().map(|list| {
            list.iter()
                .copied()
                .filter_map(crate::Algorithm::from_jwt)
                .collect()
        })
    }
}
