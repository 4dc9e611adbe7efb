//! The key-rotation actor: the only owner of the JWKS.
//!
//! It fetches at start, then on a schedule (`JWKS_REFRESH_SECS`, sooner when the
//! response's `max-age` says so, never sooner than 30 s for that reason), and when a
//! request meets an unknown `kid` — one fetch at a time (single flight), at most one
//! such fetch per `JWKS_COOLDOWN_SECS`. A failed fetch keeps the last good keys and is
//! retried with exponential backoff and jitter, capped at the refresh interval.
//! Results are published as immutable [`KeySet`] snapshots; the actor never blocks a
//! request that does not need it.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use arc_swap::ArcSwap;
use rand::Rng;
use tokio::sync::oneshot;

use super::fetch::{FetchError, Fetched, JwksFetcher};
use super::{KeySet, KeysHandle, RefreshOutcome, RotationStats};
use crate::clock::SharedClock;
use crate::config::{JwksSource, Settings};
use crate::metrics::Metrics;

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
}

/// "A request met this `kid`; do you have it?" — the only message requests send.
#[derive(Debug, Message)]
#[rtype(result = "RefreshOutcome")]
pub struct RefreshFor(pub String);

/// The actor owning the JWKS.
pub struct KeyRotation {
    fetcher: Rc<JwksFetcher>,
    snapshot: Arc<ArcSwap<KeySet>>,
    stats: Arc<RotationStats>,
    metrics: Metrics,
    clock: SharedClock,
    config: RotationConfig,
    fetching: bool,
    waiters: Vec<(String, oneshot::Sender<RefreshOutcome>)>,
    last_on_demand: Option<Instant>,
    failures: u32,
    timer: Option<SpawnHandle>,
}

impl RotationConfig {
    /// The schedule and limits the settings describe.
    pub fn from_settings(settings: &Settings) -> RotationConfig {
        RotationConfig {
            refresh: settings.refresh,
            cooldown: settings.cooldown,
            timeout: settings.fetch_timeout,
            max_stale: settings.max_stale,
        }
    }
}

/// The keys of `settings`: the rotation actor when a JWKS is configured (started on the
/// current arbiter, so inside a running actix system), else a handle without one.
pub fn start_for(settings: &Settings, clock: SharedClock, metrics: Metrics) -> KeysHandle {
    match &settings.jwks {
        Some(source) => KeyRotation::start(
            source.clone(),
            RotationConfig::from_settings(settings),
            clock,
            metrics,
        ),
        None => KeysHandle::none(clock),
    }
}

impl KeyRotation {
    /// Starts the actor on the current arbiter and returns the handle requests use.
    /// Must be called inside a running actix system.
    pub fn start(
        source: JwksSource,
        config: RotationConfig,
        clock: SharedClock,
        metrics: Metrics,
    ) -> KeysHandle {
        let snapshot = Arc::new(ArcSwap::from_pointee(KeySet::default()));
        let stats = Arc::new(RotationStats::default());
        let cooldown_secs = config.cooldown.as_secs();
        let max_stale_secs = config.max_stale.as_secs();
        let actor = KeyRotation {
            fetcher: Rc::new(JwksFetcher::new(source, config.timeout)),
            snapshot: snapshot.clone(),
            stats: stats.clone(),
            metrics,
            clock: clock.clone(),
            config,
            fetching: false,
            waiters: Vec::new(),
            last_on_demand: None,
            failures: 0,
            timer: None,
        }
        .start();
        KeysHandle::new(snapshot, actor, stats, clock, cooldown_secs, max_stale_secs)
    }

    fn start_fetch(&mut self, ctx: &mut Context<Self>) {
        self.fetching = true;
        let fetcher = self.fetcher.clone();
        let fetch = async move { fetcher.fetch().await };
        ctx.spawn(
            fetch
                .into_actor(self)
                .map(|result, actor, ctx| actor.finish_fetch(result, ctx)),
        );
    }

    fn finish_fetch(&mut self, result: Result<Fetched, FetchError>, ctx: &mut Context<Self>) {
        self.fetching = false;
        let now = self.clock.now();
        let previous = self.snapshot.load_full();
        let next = match result {
            Ok(fetched) => {
                self.stats.fetch_ok.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .jwks_fetch_total
                    .with_label_values(&["ok"])
                    .inc();
                let set = KeySet::succeeding(&previous, fetched.keys, now);
                self.log_success(&previous, &set);
                self.metrics.jwks_keys.set(set.len() as i64);
                self.metrics.jwks_last_success.set(now as f64);
                self.snapshot.store(Arc::new(set));
                self.failures = 0;
                next_refresh(self.config.refresh, fetched.max_age)
            }
            Err(error) => {
                self.stats.fetch_error.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .jwks_fetch_total
                    .with_label_values(&["error"])
                    .inc();
                self.failures = self.failures.saturating_add(1);
                let delay = backoff(self.failures, self.config.refresh, &mut rand::rng());
                log::warn!(
                    "JWKS fetch from {} failed: {error}; keeping {} last good keys, retry in {:.1}s",
                    self.fetcher.url(),
                    previous.len(),
                    delay.as_secs_f64()
                );
                self.snapshot.store(Arc::new(previous.after_failure()));
                delay
            }
        };
        let current = self.snapshot.load();
        for (kid, waiter) in self.waiters.drain(..) {
            // A waiter that gave up (its request ended) is not an error.
            let _ = waiter.send(outcome_for(&current, &kid));
        }
        self.schedule(next, ctx);
    }

    fn log_success(&self, previous: &KeySet, current: &KeySet) {
        if previous.loaded() && !previous.last_attempt_failed && previous.len() == current.len() {
            log::debug!(
                "JWKS refreshed from {}: {} keys",
                self.fetcher.url(),
                current.len()
            );
        } else {
            log::info!(
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
        self.timer = Some(ctx.run_later(delay, |actor, ctx| {
            actor.timer = None;
            if !actor.fetching {
                actor.start_fetch(ctx);
            }
        }));
    }
}

impl Actor for KeyRotation {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_fetch(ctx);
    }
}

impl Handler<RefreshFor> for KeyRotation {
    type Result = ResponseFuture<RefreshOutcome>;

    fn handle(&mut self, RefreshFor(kid): RefreshFor, ctx: &mut Self::Context) -> Self::Result {
        let current = self.snapshot.load();
        if current.contains(&kid) {
            return Box::pin(std::future::ready(RefreshOutcome::Found));
        }
        if !self.fetching {
            let cooled_down = self
                .last_on_demand
                .is_none_or(|at| at.elapsed() >= self.config.cooldown);
            if !cooled_down {
                return Box::pin(std::future::ready(outcome_for(&current, &kid)));
            }
            self.last_on_demand = Some(Instant::now());
            log::debug!("unknown kid: fetching the JWKS");
            self.start_fetch(ctx);
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters.push((kid, sender));
        Box::pin(async move { receiver.await.unwrap_or(RefreshOutcome::Unavailable) })
    }
}

fn outcome_for(set: &KeySet, kid: &str) -> RefreshOutcome {
    if set.contains(kid) {
        RefreshOutcome::Found
    } else if !set.loaded() || set.last_attempt_failed {
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
    let jitter_ms = rng.random_range(0..=(ceiling - floor).as_millis() as u64);
    floor + Duration::from_millis(jitter_ms)
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
