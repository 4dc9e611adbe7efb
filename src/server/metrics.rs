//! Prometheus metrics of one keygate instance, in its own registry so several
//! instances (tests) in one process never share counters; [`Metrics`] is also the
//! [`Observer`] that feeds them from the library core.
//!
//! Every label value comes from a fixed set — result codes, route patterns, a method
//! list with `other`, known status codes with classes for the rest — so no input can
//! add series.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry,
};

use super::store::revocations::SyncObserver;
use crate::observe::{BackendApiOutcome, JwksFetched};
use crate::{AuthError, AuthUser, Observer};

/// The metrics keygate exports at `GET /metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    auth_total: IntCounterVec,
    auth_ok: IntCounter,
    jwks_fetch_ok: IntCounter,
    jwks_fetch_error: IntCounter,
    jwks_keys: IntGauge,
    jwks_last_success: Gauge,
    token_cache_hits: IntCounter,
    token_cache_misses: IntCounter,
    backend_api_total: IntCounterVec,
    revocation_sync_failures: IntCounter,
    revocation_poll_duration: Histogram,
    revocation_listener_up: IntGauge,
    revocation_listener_reconnects: IntCounter,
    revoked_sessions: IntGauge,
    request_duration: HistogramVec,
    upstream_requests: IntCounterVec,
    upstream_duration: Histogram,
    websockets_open: IntGauge,
    websockets_closed: IntCounterVec,
}

/// Methods that get a label of their own; every other method is `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// Status codes that get a label of their own; others are counted by class (`2xx`…).
const STATUSES: [u16; 17] = [
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504,
];

/// The label of a request method: one of the nine standard methods, or `other`.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The label of a status code: itself when it is one of a fixed list, else its class.
pub fn status_label(status: u16) -> &'static str {
    const NAMES: [&str; 17] = [
        "200", "201", "204", "301", "302", "304", "400", "401", "403", "404", "405", "413", "429",
        "500", "502", "503", "504",
    ];
    if let Some(i) = STATUSES.iter().position(|s| *s == status) {
        return NAMES[i];
    }
    status_class(status)
}

/// `1xx` … `5xx` (anything else `other`).
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
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
        let backend_api_total = IntCounterVec::new(
            Opts::new(
                "keygate_backend_api_requests_total",
                "Opaque machine tokens checked with Clerk's Backend API, by outcome",
            ),
            &["outcome"],
        )?;
        let revocation_sync_failures = IntCounter::new(
            "keygate_revocation_sync_failures_total",
            "Revocation polls of the database that failed",
        )?;
        let revocation_poll_duration = Histogram::with_opts(
            HistogramOpts::new(
                "keygate_revocation_poll_duration_seconds",
                "Time one incremental revocation poll took, failed ones included",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
        )?;
        let revocation_listener_up = IntGauge::new(
            "keygate_revocation_listener_up",
            "1 while the connection listening for revocations (PostgreSQL) is subscribed",
        )?;
        let revocation_listener_reconnects = IntCounter::new(
            "keygate_revocation_listener_reconnects_total",
            "Times the revocation listener was re-established after losing its connection",
        )?;
        let revoked_sessions = IntGauge::new(
            "keygate_revoked_sessions",
            "Revoked session ids in force on this instance",
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
        registry.register(Box::new(backend_api_total.clone()))?;
        registry.register(Box::new(revocation_sync_failures.clone()))?;
        if let Some(dropped) = crate::server::telemetry::SPANS_DROPPED.as_ref() {
            registry.register(Box::new(dropped.clone()))?;
        }
        registry.register(Box::new(revocation_poll_duration.clone()))?;
        registry.register(Box::new(revocation_listener_up.clone()))?;
        registry.register(Box::new(revocation_listener_reconnects.clone()))?;
        registry.register(Box::new(revoked_sessions.clone()))?;
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "keygate_upstream_requests_total",
                "Requests proxied to the upstream, by status class (or error)",
            ),
            &["status"],
        )?;
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "keygate_upstream_duration_seconds",
                "Time until the upstream's response head",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
        )?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        let websockets_open = IntGauge::new(
            "keygate_websockets_open",
            "Proxied WebSockets open on this instance",
        )?;
        let websockets_closed = IntCounterVec::new(
            Opts::new(
                "keygate_websockets_closed_total",
                "Proxied WebSockets closed, by who or what ended them",
            ),
            &["reason"],
        )?;
        // Every reason exists from the start, so rate() and alerts work before the first.
        for reason in crate::server::gateway::sockets::Ending::LABELS {
            websockets_closed.with_label_values(&[reason]);
        }
        registry.register(Box::new(websockets_open.clone()))?;
        registry.register(Box::new(websockets_closed.clone()))?;
        // Both fetch outcomes exist from the start, so rate() works before the first error.
        let jwks_fetch_ok = jwks_fetch_total.with_label_values(&["ok"]);
        let jwks_fetch_error = jwks_fetch_total.with_label_values(&["error"]);
        let auth_ok = auth_total.with_label_values(&["ok"]);
        Ok(Metrics {
            registry,
            auth_total,
            auth_ok,
            jwks_fetch_ok,
            jwks_fetch_error,
            jwks_keys,
            jwks_last_success,
            token_cache_hits,
            token_cache_misses,
            backend_api_total,
            revocation_sync_failures,
            revocation_poll_duration,
            revocation_listener_up,
            revocation_listener_reconnects,
            revoked_sessions,
            request_duration,
            upstream_requests,
            upstream_duration,
            websockets_open,
            websockets_closed,
        })
    }

    /// A proxied WebSocket opened.
    pub fn websocket_opened(&self) {
        self.websockets_open.inc();
    }

    /// A proxied WebSocket closed, for `reason` (one of [`Ending::LABELS`]).
    ///
    /// [`Ending::LABELS`]: crate::server::gateway::sockets::Ending::LABELS
    pub fn websocket_closed(&self, reason: &'static str) {
        self.websockets_open.dec();
        self.websockets_closed.with_label_values(&[reason]).inc();
    }

    /// The duration histogram of the labels `method` (a [`method_label`]), `route` and
    /// `status` (a [`status_label`]), for a caller that keeps it.
    pub(crate) fn request_histogram(&self, method: &str, route: &str, status: &str) -> Histogram {
        self.request_duration
            .with_label_values(&[method, route, status])
    }

    /// Records one proxied request: its status (`None`: no response) and the time to
    /// its response head.
    pub fn upstream_request(&self, status: Option<u16>, seconds: f64) {
        let label = status.map_or("error", status_class);
        self.upstream_requests.with_label_values(&[label]).inc();
        self.upstream_duration.observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::with_capacity(4096);
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

impl SyncObserver for Metrics {
    fn polled(&self, ok: bool, elapsed: std::time::Duration, revoked: usize) {
        if !ok {
            self.revocation_sync_failures.inc();
        }
        self.revocation_poll_duration.observe(elapsed.as_secs_f64());
        self.revoked_sessions
            .set(i64::try_from(revoked).unwrap_or(i64::MAX));
    }

    fn listening(&self, up: bool) {
        self.revocation_listener_up.set(i64::from(up));
    }

    fn reconnected(&self) {
        self.revocation_listener_reconnects.inc();
    }
}

impl Observer for Metrics {
    fn authenticated(&self, outcome: Result<&AuthUser, &AuthError>) {
        match outcome {
            Ok(_) => self.auth_ok.inc(),
            Err(e) => self.auth_total.with_label_values(&[e.code()]).inc(),
        }
    }

    fn token_cache(&self, hit: bool) {
        if hit {
            self.token_cache_hits.inc();
        } else {
            self.token_cache_misses.inc();
        }
    }

    fn jwks_fetched(&self, fetch: &JwksFetched) {
        if fetch.ok {
            self.jwks_fetch_ok.inc();
        } else {
            self.jwks_fetch_error.inc();
        }
        self.jwks_keys
            .set(i64::try_from(fetch.keys).unwrap_or(i64::MAX));
        if let Some(at) = fetch.last_success {
            self.jwks_last_success.set(at as f64);
        }
    }

    fn backend_api_called(&self, outcome: BackendApiOutcome) {
        let label = match outcome {
            BackendApiOutcome::Verified => "verified",
            BackendApiOutcome::Refused => "refused",
            BackendApiOutcome::Failed => "failed",
        };
        self.backend_api_total.with_label_values(&[label]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_lists_every_code() {
        let reference = include_str!("../../docs/reference.md");
        for code in crate::AuthError::CODES {
            assert!(
                reference.contains(&format!("`{code}`"))
                    || reference.contains(&format!("\"code\":\"{code}\"")),
                "docs/reference.md lacks the code {code}"
            );
        }
    }

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("get"), "other");
        assert_eq!(status_label(401), "401");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(299), "2xx");
        assert_eq!(status_class(999), "other");
    }
}
