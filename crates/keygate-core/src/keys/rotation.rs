//! The key-rotation actor: the only owner of the JWKS, and the one place single flight
//! lives.
//!
//! It fetches at start, then on a schedule (`JWKS_REFRESH_SECS`, sooner when the
//! response's `max-age` says so, never sooner than 30 s for that reason), and when a
//! request meets an unknown `kid` — one fetch at a time for every waiter, at most one
//! such fetch per `JWKS_COOLDOWN_SECS`. A `kid` a fresh JWKS lacks goes into the
//! negative cache, which requests read without asking the actor again. A failed fetch
//! keeps the last good keys and is retried with exponential backoff and jitter, capped
//! at the refresh interval. Every timer runs on the injected [`Clock`](crate::clock::Clock).
//! Results are published as immutable [`KeySet`] snapshots; the actor never blocks a
//! request that does not need it.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;
use rand::Rng;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use super::fetch::{FetchError, Fetched, JwksFetcher, JwksSource};
use super::{KeySet, KeysHandle, NegativeCache, RefreshOutcome};
use crate::clock::SharedClock;
use crate::observe::{JwksFetched, SharedObserver};

/// The shortest refresh interval a response's `max-age` can ask for.
const MIN_MAX_AGE: Duration = Duration::from_secs(30);
/// The first retry delay after a failed fetch.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Schedule and limits of the actor.
#[derive(Debug, Clone)]
pub struct RotationConfig {
    /// `JWKS_REFRESH_SECS`.
    pub refresh: Duration,
    /// `JWKS_COOLDOWN_SECS`.
    pub cooldown: Duration,
    /// `JWKS_TIMEOUT_SECS`.
    pub timeout: Duration,
    /// `JWKS_MAX_STALE_SECS`.
    pub max_stale: Duration,
    /// `JWT_ALGORITHMS`: keys that fit none of them are skipped.
    pub algorithms: Vec<Algorithm>,
}

/// "A request met this `kid`; do you have it?" — the only message requests send.
#[derive(Debug, Message)]
#[rtype(result = "RefreshOutcome")]
pub struct RefreshFor {
    /// The unknown `kid`.
    pub kid: String,
    /// The asking request's span: a fetch it starts is its child in traces.
    pub cause: tracing::Span,
}

/// The actor owning the JWKS.
pub struct KeyRotation {
    fetcher: Rc<JwksFetcher>,
    snapshot: Arc<ArcSwap<KeySet>>,
    negative: Arc<NegativeCache>,
    loaded: watch::Sender<bool>,
    observer: SharedObserver,
    clock: SharedClock,
    config: RotationConfig,
    fetching: bool,
    waiters: Vec<(String, oneshot::Sender<RefreshOutcome>)>,
    last_on_demand: Option<Duration>,
    failures: u32,
    timer: Option<SpawnHandle>,
}

impl KeyRotation {
    /// Starts the actor on the current arbiter and returns the handle requests use.
    /// Must be called inside a running actix system.
    pub fn start(
        source: JwksSource,
        config: RotationConfig,
        clock: SharedClock,
        observer: SharedObserver,
    ) -> KeysHandle {
        let snapshot = Arc::new(ArcSwap::from_pointee(KeySet::default()));
        let negative = Arc::new(NegativeCache::new(config.cooldown.as_secs()));
        let (loaded, loaded_rx) = watch::channel(false);
        let max_stale_secs = config.max_stale.as_secs();
        let url = Arc::from(source.url.as_str());
        let actor = KeyRotation {
            fetcher: Rc::new(JwksFetcher::new(
                source,
                config.timeout,
                config.algorithms.clone(),
            )),
            snapshot: snapshot.clone(),
            negative: negative.clone(),
            loaded,
            observer,
            clock: clock.clone(),
            config,
            fetching: false,
            waiters: Vec::new(),
            last_on_demand: None,
            failures: 0,
            timer: None,
        }
        .start();
        KeysHandle {
            snapshot,
            actor: Some(actor),
            negative,
            loaded: loaded_rx,
            clock,
            max_stale_secs,
            url: Some(url),
        }
    }

    /// Starts a fetch; `cause` is the span of the request that asked for it (none for
    /// the schedule's).
    fn start_fetch(&mut self, ctx: &mut Context<Self>, cause: &tracing::Span) {
        self.fetching = true;
        let fetcher = self.fetcher.clone();
        let span = tracing::info_span!(parent: cause, "jwks_fetch", url = %fetcher.url());
        let fetch = async move { fetcher.fetch().instrument(span).await };
        ctx.spawn(
            fetch
                .into_actor(self)
                .map(|result, actor, ctx| actor.finish_fetch(result, ctx)),
        );
    }

    fn finish_fetch(&mut self, result: Result<Fetched, FetchError>, ctx: &mut Context<Self>) {
        self.fetching = false;
        let now = self.clock.unix_secs();
        let previous = self.snapshot.load_full();
        let (next, ok) = match result {
            Ok(fetched) => {
                let set = KeySet::succeeding(&previous, fetched.keys, now);
                self.log_success(&previous, &set);
                self.snapshot.store(Arc::new(set));
                self.loaded.send_replace(true);
                self.failures = 0;
                (next_refresh(self.config.refresh, fetched.max_age), true)
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let delay = backoff(self.failures, self.config.refresh, &mut rand::rng());
                tracing::warn!(
                    "JWKS fetch from {} failed: {error}; keeping {} last good keys, retry in {:.1}s",
                    self.fetcher.url(),
                    previous.len(),
                    delay.as_secs_f64()
                );
                self.snapshot
                    .store(Arc::new(previous.after_failure(&error.to_string())));
                (delay, false)
            }
        };
        let current = self.snapshot.load();
        self.observer.jwks_fetched(&JwksFetched {
            ok,
            keys: current.len(),
            last_success: current.last_success(),
        });
        for (kid, waiter) in self.waiters.drain(..) {
            let outcome = outcome_for(&current, &kid);
            if outcome == RefreshOutcome::NotFound {
                self.negative.insert(&kid, now);
            }
            // A waiter that gave up (its request ended or timed out) is not an error.
            let _ = waiter.send(outcome);
        }
        self.schedule(next, ctx);
    }

    fn log_success(&self, previous: &KeySet, current: &KeySet) {
        if previous.loaded() && !previous.last_attempt_failed() && previous.len() == current.len() {
            tracing::debug!(
                "JWKS refreshed from {}: {} keys",
                self.fetcher.url(),
                current.len()
            );
        } else {
            tracing::info!(
                "JWKS loaded from {}: {} keys",
                self.fetcher.url(),
                current.len()
            );
        }
    }

    fn schedule(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let sleep = self.clock.sleep(delay);
        self.timer = Some(ctx.spawn(sleep.into_actor(self).map(|(), actor, ctx| {
            actor.timer = None;
            if !actor.fetching {
                actor.start_fetch(ctx, &tracing::Span::none());
            }
        })));
    }
}

impl Actor for KeyRotation {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_fetch(ctx, &tracing::Span::none());
    }
}

impl Handler<RefreshFor> for KeyRotation {
    type Result = ResponseFuture<RefreshOutcome>;

    fn handle(
        &mut self,
        RefreshFor { kid, cause }: RefreshFor,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let current = self.snapshot.load();
        let now = self.clock.now();
        if current.contains(&kid) {
            return Box::pin(std::future::ready(RefreshOutcome::Found));
        }
        if self.negative.contains(&kid, now.as_secs()) {
            return Box::pin(std::future::ready(outcome_for(&current, &kid)));
        }
        if !self.fetching {
            let cooled_down = self
                .last_on_demand
                .is_none_or(|at| now.saturating_sub(at) >= self.config.cooldown);
            if !cooled_down {
                let outcome = outcome_for(&current, &kid);
                if outcome == RefreshOutcome::NotFound {
                    self.negative.insert(&kid, now.as_secs());
                }
                return Box::pin(std::future::ready(outcome));
            }
            self.last_on_demand = Some(now);
            tracing::debug!("unknown kid: fetching the JWKS");
            self.start_fetch(ctx, &cause);
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters.push((kid, sender));
        Box::pin(async move { receiver.await.unwrap_or(RefreshOutcome::Unavailable) })
    }
}

fn outcome_for(set: &KeySet, kid: &str) -> RefreshOutcome {
    if set.contains(kid) {
        RefreshOutcome::Found
    } else if !set.loaded() || set.last_attempt_failed() {
        RefreshOutcome::Unavailable
    } else {
        RefreshOutcome::NotFound
    }
}

/// When to refresh after a success: the configured interval, or sooner when the
/// response's `max-age` is shorter, though never sooner than 30 s for that reason.
pub fn next_refresh(refresh: Duration, max_age: Option<Duration>) -> Duration {
    match max_age {
        Some(age) if age < refresh => age.max(MIN_MAX_AGE).min(refresh),
        _ => refresh,
    }
}

/// Delay before retry number `failures` (≥ 1): doubling from 1 s, capped at the
/// refresh interval, with jitter in the upper half so replicas do not retry in step.
pub fn backoff(failures: u32, refresh: Duration, rng: &mut impl Rng) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = FIRST_BACKOFF.saturating_mul(1 << exponent).min(refresh);
    let floor = ceiling / 2;
    let span_ms = u64::try_from((ceiling - floor).as_millis()).unwrap_or(u64::MAX);
    floor + Duration::from_millis(rng.random_range(0..=span_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_shortens_the_schedule_but_never_below_30s() {
        let five_min = Duration::from_secs(300);
        assert_eq!(next_refresh(five_min, None), five_min);
        assert_eq!(
            next_refresh(five_min, Some(Duration::from_secs(600))),
            five_min
        );
        assert_eq!(
            next_refresh(five_min, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_refresh(five_min, Some(Duration::from_secs(5))),
            Duration::from_secs(30)
        );
        // A short configured interval is never lengthened by max-age.
        assert_eq!(
            next_refresh(Duration::from_secs(1), Some(Duration::ZERO)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let refresh = Duration::from_secs(300);
        let mut rng = rand::rng();
        for _ in 0..100 {
            let first = backoff(1, refresh, &mut rng);
            assert!(
                first >= Duration::from_millis(500) && first <= Duration::from_secs(1),
                "{first:?}"
            );
            let fourth = backoff(4, refresh, &mut rng);
            assert!(
                fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8),
                "{fourth:?}"
            );
            let many = backoff(30, refresh, &mut rng);
            assert!(
                many >= Duration::from_secs(150) && many <= refresh,
                "{many:?}"
            );
            assert!(backoff(10, Duration::from_secs(1), &mut rng) <= Duration::from_secs(1));
        }
    }
}
