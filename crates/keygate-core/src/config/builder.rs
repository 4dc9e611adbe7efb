//! [`AuthenticatorBuilder`]: every setting of verification, validated together in
//! [`AuthenticatorBuilder::build`] with the messages the environment gets.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::error::ConfigError;
use super::values::{check_secret, check_url, parse_publishable_key};
use crate::Authenticator;
use crate::auth::cache::TokenCache;
use crate::auth::machine::{ApiConfig, MachineTokens};
use crate::auth::metadata::ResourceMetadata;
use crate::auth::policy::Policy;
use crate::auth::sources::TokenSources;
use crate::auth::token_type::{TokenType, TokenTypes};
use crate::auth::verifier::Verifier;
use crate::auth::verifier::algorithm_list;
use crate::clock::{self, SharedClock};
use crate::keys::fetch::JwksSource;
use crate::keys::key::{KeyError, PemKeyError, public_key_from_pem};
use crate::keys::rotation::{KeyRotation, RotationConfig};
use crate::keys::{KeysHandle, SecretKey};
use crate::observe::{NoObserver, Observer, SharedObserver};
use crate::revocation::RevocationCheck;

/// Clerk's Backend API, unless `CLERK_API_URL` says otherwise.
pub const DEFAULT_CLERK_API_URL: &str = "https://api.clerk.com";

/// A value and the variable it came from (an alias, when that was used).
#[derive(Clone)]
struct Named<T> {
    var: &'static str,
    value: T,
}

fn named<T>(var: &'static str, value: T) -> Option<Named<T>> {
    Some(Named { var, value })
}

/// Builds an [`Authenticator`]: where keys come from and what a token must satisfy.
///
/// Every setting has the default of the environment variable named in its doc; the
/// same checks run as for the environment, and a [`ConfigError`] names that variable.
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
    jwks_url: Option<Named<String>>,
    publishable_key: Option<Named<String>>,
    secret_key: Option<String>,
    api_url: Option<String>,
    secret: Option<Named<Vec<u8>>>,
    public_key_pem: Option<Named<String>>,
    algorithms: Option<Vec<Algorithm>>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    authorized_parties: Named<Vec<String>>,
    require_azp: bool,
    accept_pending: bool,
    accept_templates: bool,
    oauth_audience: Option<String>,
    leeway: Duration,
    user_claim: String,
    cookie_name: Option<String>,
    token_cache_size: usize,
    refresh_interval: Duration,
    cooldown: Duration,
    fetch_timeout: Duration,
    max_stale: Duration,
    accepts: TokenTypes,
    revocations: Option<Arc<dyn RevocationCheck>>,
    observer: SharedObserver,
    clock: SharedClock,
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

    /// Checks the settings as [`AuthenticatorBuilder::build`] does, without starting
    /// anything: for a service that must refuse a configuration that cannot work before
    /// it opens a database or a port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }

    /// Validates everything and starts the key-rotation actor (when a JWKS is
    /// configured) on the current actix runtime.
    pub fn build(self) -> Result<Authenticator, ConfigError> {
        let resolved = self.resolve()?;
        let keys = match &resolved.jwks {
            Some(source) => {
                if actix_rt::Arbiter::try_current().is_none() {
                    return Err(ConfigError::new(
                        resolved.jwks_var,
                        "the authenticator must be built inside an actix runtime (#[actix_web::main]) to fetch the JWKS",
                    ));
                }
                KeyRotation::start(
                    source.clone(),
                    RotationConfig {
                        refresh: self.refresh_interval,
                        cooldown: self.cooldown,
                        timeout: self.fetch_timeout,
                        max_stale: self.max_stale,
                        algorithms: resolved.algorithms.clone(),
                    },
                    self.clock.clone(),
                    self.observer.clone(),
                )
            }
            None => KeysHandle::none(self.clock.clone()),
        };
        let oauth_audience: Option<Arc<str>> = self.oauth_audience.as_deref().map(Arc::from);
        let machine = match &self.secret_key {
            Some(secret_key) => {
                if actix_rt::Arbiter::try_current().is_none() {
                    return Err(ConfigError::new(
                        "CLERK_SECRET_KEY",
                        "the authenticator must be built inside an actix runtime (#[actix_web::main]) to call the Backend API",
                    ));
                }
                Some(MachineTokens::start(
                    ApiConfig {
                        api_url: resolved.api_url.clone(),
                        secret_key: secret_key.clone(),
                        timeout: self.fetch_timeout,
                        oauth_audience: oauth_audience.clone(),
                    },
                    self.clock.clone(),
                    self.observer.clone(),
                ))
            }
            None => None,
        };
        let metadata = ResourceMetadata::new(
            oauth_audience.as_deref(),
            &resolved.issuers,
            self.accepts.contains(TokenType::OauthToken),
        );
        let policy = Policy {
            algorithms: resolved.algorithms.clone().into(),
            issuers: resolved.issuers.into(),
            audiences: self.audiences.into(),
            oauth_audience,
            authorized_parties: self.authorized_parties.value.into(),
            require_azp: self.require_azp,
            accept_pending: self.accept_pending,
            accept_templates: self.accept_templates,
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            user_claim: self.user_claim.into(),
        };
        let verifier = Verifier {
            policy,
            secret: resolved.secret,
            static_key: resolved.static_key,
            keys,
            cache: (self.token_cache_size > 0).then(|| TokenCache::new(self.token_cache_size)),
            machine,
            revocations: self.revocations,
            clock: self.clock,
            observer: self.observer.clone(),
            retry_after_secs: self.cooldown.as_secs().clamp(1, 60),
        };
        let publishable_key = self.publishable_key.as_ref().map(|pk| pk.value.as_str());
        Ok(Authenticator::new(
            verifier,
            TokenSources::new(self.cookie_name.clone(), publishable_key),
            self.observer,
            self.accepts,
            metadata,
        ))
    }

    /// Checks every setting against the others, without starting anything.
    fn resolve(&self) -> Result<Resolved, ConfigError> {
        let clerk_host = match &self.publishable_key {
            Some(pk) => {
                Some(parse_publishable_key(&pk.value).map_err(|p| ConfigError::new(pk.var, p))?)
            }
            None => None,
        };
        if let Some(sk) = &self.secret_key
            && !sk.starts_with("sk_")
        {
            return Err(ConfigError::new(
                "CLERK_SECRET_KEY",
                "expected a Clerk secret key starting with sk_",
            ));
        }
        let api_url = self
            .api_url
            .clone()
            .unwrap_or_else(|| DEFAULT_CLERK_API_URL.into());
        check_url(&api_url).map_err(|p| ConfigError::new("CLERK_API_URL", p))?;

        let (jwks, jwks_var) = match (&self.jwks_url, &clerk_host, &self.secret_key) {
            (Some(url), _, _) => {
                check_url(&url.value).map_err(|p| ConfigError::new(url.var, p))?;
                (
                    Some(JwksSource {
                        url: url.value.clone(),
                        bearer: None,
                    }),
                    url.var,
                )
            }
            (None, Some(host), _) => (
                Some(JwksSource {
                    url: format!("https://{host}/.well-known/jwks.json"),
                    bearer: None,
                }),
                "CLERK_PUBLISHABLE_KEY",
            ),
            (None, None, Some(secret)) => (
                Some(JwksSource {
                    url: format!("{}/v1/jwks", api_url.trim_end_matches('/')),
                    bearer: Some(secret.clone()),
                }),
                "CLERK_SECRET_KEY",
            ),
            (None, None, None) => (None, "JWKS_URL"),
        };

        if let Some(secret) = &self.secret {
            check_secret(&secret.value).map_err(|p| ConfigError::new(secret.var, p))?;
        }
        let has_public = jwks.is_some() || self.public_key_pem.is_some();
        if !has_public && self.secret.is_none() {
            return Err(ConfigError::new(
                "JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET",
                "no key source is set: set one of them (or CLERK_PUBLISHABLE_KEY / CLERK_SECRET_KEY), \
                 or run `keygate dev` for a local development issuer",
            ));
        }

        let algorithms = match &self.algorithms {
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::new("JWT_ALGORITHMS", "lists no algorithm"));
                }
                let hmac = |a: &Algorithm| a.family() == AlgorithmFamily::Hmac;
                if self.secret.is_none() && list.iter().any(hmac) {
                    return Err(ConfigError::new(
                        "JWT_ALGORITHMS",
                        "lists an HS algorithm but JWT_SECRET is not set",
                    ));
                }
                if !has_public && !list.iter().any(hmac) {
                    return Err(ConfigError::new(
                        "JWT_ALGORITHMS, JWT_SECRET",
                        "lists only public-key algorithms, but the only key source is JWT_SECRET \
                         (add HS256 or set JWKS_URL / JWT_PUBLIC_KEY)",
                    ));
                }
                list.clone()
            }
            None => {
                let mut list = Vec::new();
                if has_public {
                    list.push(Algorithm::RS256);
                }
                if self.secret.is_some() {
                    list.push(Algorithm::HS256);
                }
                list
            }
        };

        let static_key = match &self.public_key_pem {
            Some(pem) => Some(Arc::new(
                public_key_from_pem(&pem.value, &algorithms)
                    .map_err(|e| static_key_error(pem.var, &algorithms, e))?,
            )),
            None => None,
        };
        let secret = self
            .secret
            .as_ref()
            .and_then(|s| SecretKey::new(&s.value, &algorithms));

        let mut issuers = self.issuers.clone();
        if issuers.is_empty()
            && let Some(host) = &clerk_host
        {
            issuers.push(format!("https://{host}"));
        }
        if self.refresh_interval.is_zero() {
            return Err(ConfigError::new("JWKS_REFRESH_SECS", "must be at least 1"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(ConfigError::new("JWKS_TIMEOUT_SECS", "must be at least 1"));
        }
        Ok(Resolved {
            api_url: api_url.trim_end_matches('/').to_string(),
            jwks,
            jwks_var,
            algorithms,
            static_key,
            secret,
            issuers,
        })
    }
}

/// The error of a `JWT_PUBLIC_KEY` that cannot be used: a key that the allow-list
/// gives nothing to verify is a problem between both variables, and says so.
fn static_key_error(var: &'static str, algorithms: &[Algorithm], e: PemKeyError) -> ConfigError {
    match e {
        PemKeyError::Key(KeyError::NoAllowedAlgorithm(kind)) => ConfigError::new(
            format!("JWT_ALGORITHMS, {var}"),
            format!(
                "the {} key of {var} verifies {}, and JWT_ALGORITHMS allows only {}: \
                 set JWT_ALGORITHMS to an algorithm of the key, or give a key of the allowed type",
                kind.name(),
                kind.algorithm_names(),
                algorithm_list(algorithms)
            ),
        ),
        other => ConfigError::new(var, other.to_string()),
    }
}

/// The settings after validation.
struct Resolved {
    api_url: String,
    jwks: Option<JwksSource>,
    jwks_var: &'static str,
    algorithms: Vec<Algorithm>,
    static_key: Option<Arc<crate::keys::PublicKey>>,
    secret: Option<SecretKey>,
    issuers: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    use super::*;

    const SECRET: &str = "a-very-long-shared-secret-of-32+bytes!";

    fn builder(vars: &[(&str, &str)]) -> Result<AuthenticatorBuilder, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthenticatorBuilder::from_lookup(move |k| map.get(k).cloned())
    }

    fn resolved(vars: &[(&str, &str)]) -> Result<(AuthenticatorBuilder, Resolved), ConfigError> {
        let b = builder(vars)?;
        let r = b.resolve()?;
        Ok((b, r))
    }

    fn err(vars: &[(&str, &str)]) -> ConfigError {
        match resolved(vars) {
            Ok(_) => panic!("expected a configuration error for {vars:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_with_a_secret() {
        let (b, r) = resolved(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(r.algorithms, vec![Algorithm::HS256]);
        assert_eq!(b.user_claim, "sub");
        assert_eq!(b.cookie_name.as_deref(), Some("__session"));
        assert_eq!(b.leeway, Duration::from_secs(5));
        assert_eq!(b.refresh_interval, Duration::from_secs(300));
        assert_eq!(b.cooldown, Duration::from_secs(10));
        assert_eq!(b.fetch_timeout, Duration::from_secs(5));
        assert_eq!(b.max_stale, Duration::from_secs(86_400));
        assert_eq!(b.token_cache_size, 10_000);
        assert!(r.jwks.is_none() && r.issuers.is_empty() && b.audiences.is_empty());
    }

    #[test]
    fn no_key_source_names_all_three_and_dev() {
        let e = err(&[]);
        assert!(
            e.var.contains("JWKS_URL")
                && e.var.contains("JWT_PUBLIC_KEY")
                && e.var.contains("JWT_SECRET")
        );
        assert!(e.to_string().contains("keygate dev"));
    }

    #[test]
    fn short_secret_is_rejected_without_echoing_it() {
        let e = err(&[("JWT_SECRET", "short-secret")]);
        assert_eq!(e.var, "JWT_SECRET");
        assert!(!e.to_string().contains("short-secret"));
        let e = Authenticator::builder()
            .secret("short-secret")
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "JWT_SECRET: must be at least 32 bytes, got 12"
        );
    }

    #[test]
    fn base64_secret_in_both_alphabets_and_the_value_as_it_is() {
        let raw = [0xfbu8; 40];
        let std = STANDARD.encode(raw);
        let url = URL_SAFE_NO_PAD.encode(raw);
        for v in [format!("base64:{std}"), format!("base64:{url}")] {
            let (b, _) = resolved(&[("JWT_SECRET", &v)]).unwrap();
            assert_eq!(b.secret.unwrap().value, raw.to_vec());
        }
        assert_eq!(err(&[("JWT_SECRET", "base64:***")]).var, "JWT_SECRET");
        let short = format!("base64:{}", STANDARD_NO_PAD.encode([1u8; 31]));
        assert_eq!(err(&[("JWT_SECRET", &short)]).var, "JWT_SECRET");
        let spaced = format!("{SECRET} ");
        let (b, _) = resolved(&[("JWT_SECRET", &spaced)]).unwrap();
        assert_eq!(b.secret.unwrap().value, spaced.as_bytes());
    }

    #[test]
    fn jwks_url_and_alias() {
        let (_, r) = resolved(&[(
            "CLERK_JWKS_URL",
            "https://x.clerk.accounts.dev/.well-known/jwks.json",
        )])
        .unwrap();
        assert_eq!(
            r.jwks.unwrap().url,
            "https://x.clerk.accounts.dev/.well-known/jwks.json"
        );
        assert_eq!(r.algorithms, vec![Algorithm::RS256]);
        let (_, r) = resolved(&[
            ("JWKS_URL", "http://a/jwks"),
            ("CLERK_JWKS_URL", "http://b/jwks"),
        ])
        .unwrap();
        assert_eq!(r.jwks.unwrap().url, "http://a/jwks");
        assert_eq!(err(&[("JWKS_URL", "ftp://x")]).var, "JWKS_URL");
        assert_eq!(err(&[("CLERK_JWKS_URL", "nope")]).var, "CLERK_JWKS_URL");
    }

    #[test]
    fn numbers_and_flags() {
        let base = ("JWT_SECRET", SECRET);
        for var in [
            "JWT_LEEWAY_SECS",
            "JWKS_REFRESH_SECS",
            "JWKS_COOLDOWN_SECS",
            "JWKS_TIMEOUT_SECS",
            "TOKEN_CACHE_SIZE",
            "JWKS_MAX_STALE_SECS",
        ] {
            assert_eq!(builder(&[base, (var, "abc")]).unwrap_err().var, var);
            assert_eq!(builder(&[base, (var, "-1")]).unwrap_err().var, var);
        }
        assert_eq!(
            builder(&[base, ("JWKS_REFRESH_SECS", "0")])
                .unwrap_err()
                .var,
            "JWKS_REFRESH_SECS"
        );
        assert_eq!(
            builder(&[base, ("JWKS_REFRESH_SECS", "1")])
                .unwrap()
                .refresh_interval,
            Duration::from_secs(1)
        );
        assert_eq!(
            builder(&[base, ("TOKEN_CACHE_SIZE", "0")])
                .unwrap()
                .token_cache_size,
            0
        );
        assert_eq!(
            builder(&[base, ("JWT_REQUIRE_AZP", "maybe")])
                .unwrap_err()
                .var,
            "JWT_REQUIRE_AZP"
        );
        assert!(
            builder(&[base, ("JWT_ACCEPT_PENDING", "TRUE")])
                .unwrap()
                .accept_pending
        );
    }

    #[test]
    fn algorithms_allow_list() {
        let (_, r) = resolved(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ALGORITHMS", "HS512, hs256,HS512"),
        ])
        .unwrap();
        assert_eq!(r.algorithms, vec![Algorithm::HS512, Algorithm::HS256]);
        assert_eq!(
            builder(&[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "none")])
                .unwrap_err()
                .var,
            "JWT_ALGORITHMS"
        );
        assert_eq!(
            err(&[("JWKS_URL", "http://a/j"), ("JWT_ALGORITHMS", "HS256")]).var,
            "JWT_ALGORITHMS"
        );
        let (_, r) = resolved(&[("JWKS_URL", "http://a/j"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(r.algorithms, vec![Algorithm::RS256, Algorithm::HS256]);
    }

    #[test]
    fn lists_and_cookie() {
        let b = builder(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", "https://a, https://b"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
            ("JWT_COOKIE_NAME", ""),
        ])
        .unwrap();
        assert_eq!(b.issuers, vec!["https://a", "https://b"]);
        assert_eq!(b.audiences, vec!["api"]);
        assert_eq!(b.authorized_parties.value, vec!["http://localhost:3000"]);
        assert_eq!(b.cookie_name, None);
    }

    #[test]
    fn public_key_errors_name_the_variable() {
        assert_eq!(
            err(&[("JWT_PUBLIC_KEY", "not a key")]).var,
            "JWT_PUBLIC_KEY"
        );
        assert_eq!(
            err(&[(
                "CLERK_JWT_KEY",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
            )])
            .var,
            "CLERK_JWT_KEY"
        );
    }

    fn pk(host_and_dollar: &str, prefix: &str) -> String {
        format!("{prefix}{}", STANDARD.encode(host_and_dollar))
    }

    #[test]
    fn publishable_key_derives_jwks_and_issuer_and_explicit_values_win() {
        let key = pk("clerk.example.com$", "pk_live_");
        let (_, r) = resolved(&[("CLERK_PUBLISHABLE_KEY", &key)]).unwrap();
        assert_eq!(
            r.jwks.as_ref().unwrap().url,
            "https://clerk.example.com/.well-known/jwks.json"
        );
        assert_eq!(r.jwks.unwrap().bearer, None);
        assert_eq!(r.issuers, vec!["https://clerk.example.com"]);
        let (_, r) = resolved(&[
            ("CLERK_PUBLISHABLE_KEY", &key),
            ("CLERK_SECRET_KEY", "sk_test_abc"),
            ("JWKS_URL", "http://127.0.0.1:9/jwks"),
            ("JWT_ISSUER", "http://other"),
        ])
        .unwrap();
        assert_eq!(
            r.jwks.unwrap(),
            JwksSource {
                url: "http://127.0.0.1:9/jwks".into(),
                bearer: None
            }
        );
        assert_eq!(r.issuers, vec!["http://other"]);
        assert_eq!(
            err(&[("CLERK_PUBLISHABLE_KEY", "pk_test_bm9wZQ")]).var,
            "CLERK_PUBLISHABLE_KEY"
        );
    }

    #[test]
    fn secret_key_uses_backend_api_only_without_other_jwks() {
        let (_, r) = resolved(&[
            ("CLERK_SECRET_KEY", "sk_test_123"),
            ("CLERK_API_URL", "http://127.0.0.1:1/"),
        ])
        .unwrap();
        let jwks = r.jwks.unwrap();
        assert_eq!(jwks.url, "http://127.0.0.1:1/v1/jwks");
        assert_eq!(jwks.bearer.as_deref(), Some("sk_test_123"));
        assert!(!format!("{jwks:?}").contains("sk_test_123"));
        assert_eq!(
            err(&[("CLERK_SECRET_KEY", "pk_nope")]).var,
            "CLERK_SECRET_KEY"
        );
        let e = err(&[
            ("CLERK_SECRET_KEY", "sk_x"),
            ("CLERK_API_URL", "api.clerk.com"),
        ]);
        assert_eq!(e.var, "CLERK_API_URL");
    }

    #[test]
    fn build_outside_an_actix_runtime_is_an_error_not_a_panic() {
        let e = Authenticator::builder()
            .jwks_url("http://127.0.0.1:9/jwks.json")
            .build()
            .unwrap_err();
        assert_eq!(e.var, "JWKS_URL");
        assert!(e.problem.contains("actix"));
    }
}
