//! [`Authenticator`]: the handle an application registers once and every request reads.

use std::sync::Arc;

use actix_web::HttpRequest;

use crate::auth::ResourceMetadata;
use crate::auth::error::Rejection;
use crate::auth::sources::{Found, NO_TOKEN, TokenSources, bearer, without_bearer};
use crate::auth::token_type::TokenTypes;
use crate::auth::verifier::Verifier;
use crate::config::{AuthenticatorBuilder, ConfigError};
use crate::observe::SharedObserver;
use crate::{AuthError, AuthUser};

/// Verifies tokens: keys (and their rotation actor), policy and cache behind one cheap
/// `Clone` handle.
///
/// Build it once at start — [`Authenticator::builder`] or [`Authenticator::from_env`] —
/// inside the actix-web runtime, and register it with `.app_data(..)`; the
/// [`AuthUser`] extractor finds it there. Every clone shares the same keys, cache and
/// actor.
///
/// ```no_run
/// # use keygate_core as keygate;
/// use actix_web::{App, HttpServer, web};
/// use keygate::{Authenticator, AuthUser};
///
/// async fn protected(user: AuthUser) -> String {
///     format!("Hello, user {}", user.user_id())
/// }
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     // JWKS_URL, CLERK_PUBLISHABLE_KEY, JWT_SECRET, ... as for the keygate service.
///     let authenticator = Authenticator::from_env().map_err(std::io::Error::other)?;
///     HttpServer::new(move || {
///         App::new()
///             .app_data(authenticator.clone())
///             .route("/protected", web::get().to(protected))
///     })
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// }
/// ```
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
    accepts: TokenTypes,
}

struct Inner {
    verifier: Verifier,
    sources: TokenSources,
    observer: SharedObserver,
    metadata: Option<ResourceMetadata>,
}

/// Why tokens that need the JWKS cannot be checked right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The first JWKS fetch has not succeeded yet.
    #[error("signing keys not loaded yet")]
    KeysNotLoaded,
    /// No fetch succeeded within `JWKS_MAX_STALE_SECS`.
    #[error("signing keys are stale: no successful JWKS fetch within JWKS_MAX_STALE_SECS")]
    KeysStale,
}

/// A Clerk cookie token issued before the client's last sign-in state change is
/// outdated; one without `iat` is not judged (as Clerk's SDK does).
fn outdated(user: AuthUser, client_uat: i64) -> Result<AuthUser, Rejection> {
    match user.claims().iat() {
        Some(iat) if iat < client_uat => Err(Rejection::new(
            AuthError::SessionOutdated,
            format!("the cookie token's iat {iat} is before __client_uat {client_uat}"),
        )),
        _ => Ok(user),
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("jwks", &self.inner.verifier.keys().has_jwks())
            .field("accepts", &self.accepts)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub(crate) fn new(
        verifier: Verifier,
        sources: TokenSources,
        observer: SharedObserver,
        accepts: TokenTypes,
        metadata: Option<ResourceMetadata>,
    ) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                verifier,
                sources,
                observer,
                metadata,
            }),
            accepts,
        }
    }

    /// A builder with every default.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder::new()
    }

    /// The authenticator the process environment describes (`JWKS_URL`,
    /// `CLERK_PUBLISHABLE_KEY`, `JWT_SECRET`, … as for the keygate service). Must run
    /// inside an actix-web runtime. It does not read `.env`.
    pub fn from_env() -> Result<Authenticator, ConfigError> {
        AuthenticatorBuilder::from_env()?.build()
    }

    /// The same authenticator (keys, cache, actor) accepting other token types, e.g. for
    /// a scope of machine routes: `web::scope("/internal").app_data(auth.accepting(..))`.
    pub fn accepting(&self, types: TokenTypes) -> Authenticator {
        Authenticator {
            inner: self.inner.clone(),
            accepts: types,
        }
    }

    /// The token types this handle accepts.
    pub fn accepts(&self) -> TokenTypes {
        self.accepts
    }

    /// The OAuth protected-resource metadata (RFC 9728), when `OAUTH_AUDIENCE` is a URL
    /// and OAuth access tokens are accepted.
    pub fn resource_metadata(&self) -> Option<&ResourceMetadata> {
        self.inner.metadata.as_ref()
    }

    /// Verifies a token that did not arrive in an HTTP request (a WebSocket message, a
    /// queue), with every rule a request's token gets.
    ///
    /// ```no_run
    /// # use keygate_core as keygate;
    /// # async fn on_message(auth: keygate::Authenticator, token: &str) {
    /// match auth.verify(token).await {
    ///     Ok(user) => println!("message from {}", user.user_id()),
    ///     Err(e) => println!("refused: {}", e.code()),
    /// }
    /// # }
    /// ```
    pub async fn verify(&self, token: &str) -> Result<AuthUser, AuthError> {
        self.explain(token).await.map_err(|r| r.error)
    }

    /// [`Authenticator::verify`], and on refusal the reason: what was expected and what
    /// the token has (for `keygate verify` and logs; never for a response body).
    pub async fn explain(&self, token: &str) -> Result<AuthUser, Rejection> {
        let result = self.check(token.trim()).await;
        self.report(&result);
        result
    }

    /// [`Authenticator::explain`] for the value of an `Authorization` header, read as
    /// a request's is: a `Bearer` token is verified; anything else is `missing_token`,
    /// explained (no `Bearer` scheme, a bare token, an empty value).
    pub async fn explain_authorization(&self, value: &str) -> Result<AuthUser, Rejection> {
        if let Some(token) = bearer(value) {
            return self.explain(token).await;
        }
        let problem = without_bearer(value).unwrap_or_else(|| NO_TOKEN.to_string());
        let result = Err(Rejection::new(AuthError::MissingToken, problem));
        self.report(&result);
        result
    }

    /// Authenticates a request: its token from `Authorization: Bearer` or the session
    /// cookie, verified. The extractor and the gateway call this.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<AuthUser, AuthError> {
        let result = match self.inner.sources.find(req) {
            Ok(Found::Header(token)) => self.check(token).await,
            Ok(Found::Cookie { token, client_uat }) => {
                self.check(&token).await.and_then(|user| match client_uat {
                    Some(uat) => outdated(user, uat),
                    None => Ok(user),
                })
            }
            Err(AuthError::MissingToken) => Err(Rejection::new(
                AuthError::MissingToken,
                self.inner.sources.why_missing(req),
            )),
            Err(e) => Err(Rejection::from(e)),
        };
        self.report(&result);
        result.map_err(|r| r.error)
    }

    /// Like [`Authenticator::authenticate`], but a request without any token is
    /// `Ok(None)` and is not reported: for routes where signing in is optional.
    pub async fn try_authenticate(&self, req: &HttpRequest) -> Result<Option<AuthUser>, AuthError> {
        match self.inner.sources.find(req) {
            Err(AuthError::MissingToken) => Ok(None),
            _ => self.authenticate(req).await.map(Some),
        }
    }

    /// Resolves once tokens can be checked: at once without a JWKS, else after the
    /// first successful fetch.
    pub async fn ready(&self) {
        self.inner.verifier.keys().loaded().await;
    }

    /// Whether tokens that need the JWKS can be checked now.
    pub fn keys_ready(&self) -> Result<(), NotReady> {
        let keys = self.inner.verifier.keys();
        if !keys.has_jwks() {
            return Ok(());
        }
        let set = keys.current();
        if !set.loaded() {
            Err(NotReady::KeysNotLoaded)
        } else if keys.is_stale(&set) {
            Err(NotReady::KeysStale)
        } else {
            Ok(())
        }
    }

    /// Why the keys cannot be had, while the most recent JWKS fetch failed: its URL
    /// and the HTTP status or connection error (`None` without a JWKS, before the first
    /// fetch finished, and after a fetch that succeeded). For diagnostics such as
    /// `keygate verify`, which stops waiting for keys that will not come.
    pub fn jwks_failure(&self) -> Option<String> {
        let keys = self.inner.verifier.keys();
        keys.current().last_error()?;
        keys.fetch_state()
    }

    async fn check(&self, token: &str) -> Result<AuthUser, Rejection> {
        let verified = self.inner.verifier.verify(token, self.accepts).await?;
        Ok(AuthUser(verified))
    }

    fn report(&self, result: &Result<AuthUser, Rejection>) {
        match result {
            Ok(user) => self.inner.observer.authenticated(Ok(user)),
            Err(rejection) => {
                tracing::debug!(
                    code = rejection.error.code(),
                    "token rejected: {}",
                    rejection.reason
                );
                self.inner.observer.authenticated(Err(&rejection.error));
            }
        }
    }
}
