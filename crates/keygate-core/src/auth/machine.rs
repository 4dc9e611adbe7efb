//! Opaque machine tokens — M2M tokens (`mt_…`), OAuth access tokens (`oat_…`) and API
//! keys (`ak_…`) — checked with Clerk's Backend API, as its backend SDK does.
//!
//! Requests read the answer cache; only a token that is not in it goes to the
//! [`BackendApi`] actor, which makes one call per token however many requests wait for
//! it (single flight), and writes the answer to the cache before anyone hears it: a
//! verified token until its expiry and at most 60 s, a refusal for 10 s, a failure for
//! 1 s so that an outage does not become one call per request. The secret key goes into
//! the `Authorization` header of these calls and nowhere else; it is never logged.
//!
//! keygate is stricter than Clerk's SDK here on purpose: an answer that says the token
//! is `revoked` or `expired` (or whose `expiration` is past) is a refusal.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use awc::http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::AuthError;
use super::claims::Claims;
use super::classify::Opaque;
use super::error::Rejection;
use super::verified::{KeySource, Verified};
use crate::clock::SharedClock;
use crate::observe::{BackendApiOutcome, SharedObserver};

/// How long a verified answer is trusted at most.
pub const VERIFIED_TTL_SECS: u64 = 60;
/// How long a refusal is remembered.
pub const REFUSED_TTL_SECS: u64 = 10;
/// How long a failed call (the API down) is remembered.
pub const FAILED_TTL_SECS: u64 = 1;
/// Answers remembered; a flood of random tokens evicts, it never grows the cache.
const CACHE_CAPACITY: usize = 10_000;
/// The largest answer read from the API.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What the API said about a token.
pub type Answer = Result<Arc<Verified>, Rejection>;

#[derive(Clone)]
struct Cached {
    answer: Answer,
    until: u64,
}

/// The request side: the answer cache and a line to the actor.
#[derive(Clone)]
pub struct MachineTokens {
    actor: Addr<BackendApi>,
    cache: Arc<quick_cache::sync::Cache<Box<str>, Cached>>,
    clock: SharedClock,
    wait: Duration,
}

/// Where and how to call the Backend API.
#[derive(Clone)]
pub struct ApiConfig {
    /// `CLERK_API_URL`, without a trailing slash.
    pub api_url: String,
    /// `CLERK_SECRET_KEY`.
    pub secret_key: String,
    /// The timeout of one call.
    pub timeout: Duration,
    /// `OAUTH_AUDIENCE`: what an OAuth access token's `aud` must contain.
    pub oauth_audience: Option<Arc<str>>,
}

impl MachineTokens {
    /// Starts the actor on the current arbiter (inside an actix runtime).
    pub fn start(config: ApiConfig, clock: SharedClock, observer: SharedObserver) -> MachineTokens {
        let cache = Arc::new(quick_cache::sync::Cache::new(CACHE_CAPACITY));
        let wait = config.timeout + Duration::from_secs(1);
        let actor = BackendApi {
            config,
            client: None,
            cache: cache.clone(),
            clock: clock.clone(),
            observer,
            inflight: HashMap::new(),
        }
        .start();
        MachineTokens {
            actor,
            cache,
            clock,
            wait,
        }
    }

    /// The API's answer for `token`, from the cache when it has one.
    pub async fn verify(&self, kind: Opaque, token: &str) -> Answer {
        if let Some(cached) = self.cache.get(token) {
            if cached.until > self.clock.unix_secs() {
                return cached.answer;
            }
            self.cache.remove(token);
        }
        let request = self.actor.send(Check {
            kind,
            token: token.into(),
            cause: tracing::Span::current(),
        });
        match tokio::time::timeout(self.wait, request).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => Err(unavailable("the Backend API did not answer in time")),
        }
    }
}

fn unavailable(reason: &'static str) -> Rejection {
    Rejection::new(AuthError::KeysUnavailable { retry_after: 1 }, reason)
}

/// "Is this opaque token good?"
#[derive(Message)]
#[rtype(result = "Answer")]
struct Check {
    kind: Opaque,
    token: Box<str>,
    /// The request's span: the call becomes its child in traces.
    cause: tracing::Span,
}

/// The actor that talks to the Backend API.
pub struct BackendApi {
    config: ApiConfig,
    client: Option<Rc<awc::Client>>,
    cache: Arc<quick_cache::sync::Cache<Box<str>, Cached>>,
    clock: SharedClock,
    observer: SharedObserver,
    inflight: HashMap<Box<str>, Vec<oneshot::Sender<Answer>>>,
}

impl Actor for BackendApi {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        // awc clients live on the thread that made them: the actor's.
        self.client = Some(Rc::new(
            awc::Client::builder()
                .timeout(self.config.timeout)
                .disable_redirects()
                .add_default_header((
                    header::USER_AGENT,
                    concat!("keygate/", env!("CARGO_PKG_VERSION")),
                ))
                .finish(),
        ));
    }
}

impl Handler<Check> for BackendApi {
    type Result = ResponseFuture<Answer>;

    fn handle(
        &mut self,
        Check { kind, token, cause }: Check,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        if let Some(cached) = self.cache.get(&token)
            && cached.until > self.clock.unix_secs()
        {
            return Box::pin(std::future::ready(cached.answer));
        }
        let (sender, receiver) = oneshot::channel();
        match self.inflight.get_mut(&token) {
            Some(waiters) => waiters.push(sender),
            None => {
                self.inflight.insert(token.clone(), vec![sender]);
                let Some(client) = self.client.clone() else {
                    return Box::pin(std::future::ready(Err(unavailable(
                        "the Backend API client is not ready",
                    ))));
                };
                let call = call(client, self.config.clone(), kind, token.clone(), cause);
                ctx.spawn(call.into_actor(self).map(move |outcome, actor, _| {
                    actor.finish(token, kind, outcome);
                }));
            }
        }
        Box::pin(async move {
            receiver
                .await
                .unwrap_or_else(|_| Err(unavailable("the Backend API call was dropped")))
        })
    }
}

/// The outcome of one call, before it becomes an answer.
enum Outcome {
    Token(ApiToken),
    Refused(StatusCode),
    Failed(String),
}

impl BackendApi {
    fn finish(&mut self, token: Box<str>, kind: Opaque, outcome: Outcome) {
        let now = self.clock.unix_secs();
        let (answer, until, reported) = match outcome {
            Outcome::Token(api) => match self.identity(kind, api, now) {
                Ok((verified, until)) => (Ok(verified), until, BackendApiOutcome::Verified),
                Err(refusal) => (
                    Err(refusal),
                    now + REFUSED_TTL_SECS,
                    BackendApiOutcome::Refused,
                ),
            },
            Outcome::Refused(status) => (
                Err(Rejection::new(
                    AuthError::InvalidSignature,
                    format!("the Backend API does not accept the {kind:?} token ({status})"),
                )),
                now + REFUSED_TTL_SECS,
                BackendApiOutcome::Refused,
            ),
            Outcome::Failed(why) => {
                tracing::warn!("Backend API check of a {kind:?} token failed: {why}");
                (
                    Err(unavailable(
                        "the Backend API could not be reached or failed",
                    )),
                    now + FAILED_TTL_SECS,
                    BackendApiOutcome::Failed,
                )
            }
        };
        self.observer.backend_api_called(reported);
        self.cache.insert(
            token.clone(),
            Cached {
                answer: answer.clone(),
                until,
            },
        );
        for waiter in self.inflight.remove(&token).unwrap_or_default() {
            // A waiter that gave up is not an error.
            let _ = waiter.send(answer.clone());
        }
    }

    /// The identity a verified answer describes, and until when it may be trusted.
    fn identity(
        &self,
        kind: Opaque,
        api: ApiToken,
        now: u64,
    ) -> Result<(Arc<Verified>, u64), Rejection> {
        let refused = |error: AuthError, reason: String| Err(Rejection::new(error, reason));
        if api.revoked {
            return refused(
                AuthError::TokenRevoked,
                "the Backend API says the token is revoked".into(),
            );
        }
        let expiration = api.expiration.as_ref().and_then(Value::as_f64);
        let expires_at = expiration.map(|ms| (ms / 1000.0).floor() as i64);
        if api.expired || expires_at.is_some_and(|at| at <= now as i64) {
            return refused(
                AuthError::TokenExpired,
                "the Backend API says the token has expired".into(),
            );
        }
        let Some(subject) = api.subject.filter(|s| !s.is_empty()) else {
            return refused(
                AuthError::MissingClaim,
                "the Backend API's answer names no subject".into(),
            );
        };
        if kind == Opaque::OAuth
            && let Some(wanted) = &self.config.oauth_audience
            && !api.aud.iter().any(|a| a == &**wanted)
        {
            return refused(
                AuthError::InvalidAudience,
                format!(
                    "expected aud to contain {:?} (OAUTH_AUDIENCE), the token has {:?}",
                    &**wanted, api.aud
                ),
            );
        }
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(subject));
        if let Some(at) = expires_at {
            claims.insert("exp".into(), json!(at));
        }
        if let Some(id) = api.id {
            claims.insert("jti".into(), json!(id));
        }
        claims.insert("scopes".into(), json!(api.scopes));
        for (name, value) in [("name", api.name), ("client_id", api.client_id)] {
            if let Some(value) = value {
                claims.insert(name.into(), json!(value));
            }
        }
        if !api.aud.is_empty() {
            claims.insert("aud".into(), json!(api.aud));
        }
        if let Some(custom) = api.claims.filter(|c| !c.is_null()) {
            claims.insert("claims".into(), custom);
        }
        let until = expires_at
            .and_then(|at| u64::try_from(at).ok())
            .map_or(now + VERIFIED_TTL_SECS, |at| {
                at.min(now + VERIFIED_TTL_SECS)
            });
        let verified = Verified {
            claims: Claims::from_value(&Value::Object(claims), "sub"),
            org: Default::default(),
            token_type: kind.token_type(),
            scopes: api.scopes,
            key: KeySource::BackendApi,
            memo: Default::default(),
        };
        Ok((Arc::new(verified), until))
    }
}

/// The fields of the Backend API's answers keygate reads (the M2M token, OAuth access
/// token and API key objects share them).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiToken {
    id: Option<String>,
    subject: Option<String>,
    scopes: Vec<String>,
    claims: Option<Value>,
    revoked: bool,
    expired: bool,
    expiration: Option<Value>,
    name: Option<String>,
    client_id: Option<String>,
    aud: Vec<String>,
}

/// The path and body of the verify call for each kind.
fn endpoint(kind: Opaque, token: &str) -> (&'static str, Value) {
    match kind {
        Opaque::M2m => ("/v1/m2m_tokens/verify", json!({ "token": token })),
        Opaque::OAuth => (
            "/v1/oauth_applications/access_tokens/verify",
            json!({ "access_token": token }),
        ),
        Opaque::ApiKey => ("/v1/api_keys/verify", json!({ "secret": token })),
    }
}

async fn call(
    client: Rc<awc::Client>,
    config: ApiConfig,
    kind: Opaque,
    token: Box<str>,
    cause: tracing::Span,
) -> Outcome {
    let (path, body) = endpoint(kind, &token);
    let span = tracing::info_span!(parent: &cause, "backend_api", path);
    async move {
        let sent = client
            .post(format!("{}{path}", config.api_url))
            .insert_header((
                header::AUTHORIZATION,
                format!("Bearer {}", config.secret_key),
            ))
            .insert_header((header::ACCEPT, "application/json"))
            .send_json(&body)
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Outcome::Failed(format!(
                "the Backend API refused CLERK_SECRET_KEY ({status})"
            ));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Outcome::Failed(format!("HTTP status {status}"));
        }
        if !status.is_success() {
            return Outcome::Refused(status);
        }
        match response.body().limit(MAX_ANSWER_BYTES).await {
            Ok(bytes) => match serde_json::from_slice::<ApiToken>(&bytes) {
                Ok(token) => Outcome::Token(token),
                Err(e) => Outcome::Failed(format!("an answer that is not a token object: {e}")),
            },
            Err(e) => Outcome::Failed(format!("the answer could not be read: {e}")),
        }
    }
    .instrument(span)
    .await
}
