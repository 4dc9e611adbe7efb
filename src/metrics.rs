//! Prometheus metrics of one keygate instance, in its own registry so several
//! instances (tests) in one process never share counters.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

/// The metrics keygate exports at `GET /metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `keygate_auth_total{result}`: `ok` or the failure code.
    pub auth_total: IntCounterVec,
    /// `keygate_auth_total{result="ok"}`, resolved once: the hot path skips the label lookup.
    pub auth_ok: IntCounter,
    /// `keygate_jwks_fetch_total{outcome}`: `ok` or `error`.
    pub jwks_fetch_total: IntCounterVec,
    /// `keygate_jwks_keys`: usable keys in the published set.
    pub jwks_keys: IntGauge,
    /// `keygate_jwks_last_success_timestamp_seconds`.
    pub jwks_last_success: Gauge,
    /// `keygate_token_cache_hits_total`.
    pub token_cache_hits: IntCounter,
    /// `keygate_token_cache_misses_total`.
    pub token_cache_misses: IntCounter,
    /// `keygate_http_request_duration_seconds{method,route,status}`.
    pub request_duration: HistogramVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let auth_total = IntCounterVec::new(
            Opts::new("keygate_auth_total", "Authentication attempts by result"),
            &["result"],
        )?;
        let jwks_fetch_total = IntCounterVec::new(
            Opts::new("keygate_jwks_fetch_total", "JWKS fetches by outcome"),
            &["outcome"],
        )?;
        let jwks_keys = IntGauge::new("keygate_jwks_keys", "Usable keys in the published JWKS")?;
        let jwks_last_success = Gauge::new(
            "keygate_jwks_last_success_timestamp_seconds",
            "Unix time of the last successful JWKS fetch",
        )?;
        let token_cache_hits = IntCounter::new(
            "keygate_token_cache_hits_total",
            "Verified-token cache hits",
        )?;
        let token_cache_misses = IntCounter::new(
            "keygate_token_cache_misses_total",
            "Verified-token cache misses",
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "keygate_http_request_duration_seconds",
                "HTTP request duration",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(auth_total.clone()))?;
        registry.register(Box::new(jwks_fetch_total.clone()))?;
        registry.register(Box::new(jwks_keys.clone()))?;
        registry.register(Box::new(jwks_last_success.clone()))?;
        registry.register(Box::new(token_cache_hits.clone()))?;
        registry.register(Box::new(token_cache_misses.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        // Both fetch outcomes exist from the start, so rate() works before the first error.
        jwks_fetch_total.with_label_values(&["ok"]);
        jwks_fetch_total.with_label_values(&["error"]);
        let auth_ok = auth_total.with_label_values(&["ok"]);
        Ok(Metrics {
            registry,
            auth_total,
            auth_ok,
            jwks_fetch_total,
            jwks_keys,
            jwks_last_success,
            token_cache_hits,
            token_cache_misses,
            request_duration,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::with_capacity(4096);
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
