//! Traces: one span per request (`span::RequestLayer`), with child spans for
//! JWKS fetches, Backend API calls and the upstream call; W3C trace context honoured
//! from `traceparent` and propagated to the upstream; and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, export over OTLP/HTTP.
//!
//! Export never slows a request: finished spans go into a bounded queue that a thread
//! of its own drains to the collector; when the queue is full the span is dropped and
//! counted in `keygate_otel_spans_dropped_total`.

#[cfg(feature = "otlp")]
mod export;
#[cfg(feature = "otlp")]
mod processor;
pub mod span;

use std::sync::LazyLock;

use prometheus::IntCounter;

use crate::ConfigError;
use crate::config::env::Env;

#[cfg(feature = "otlp")]
pub use export::{active, propagation_headers};

/// The OTLP/HTTP wire format (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf` (the default).
    Protobuf,
    /// `http/json`.
    Json,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The traces URL: `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    pub traces_url: String,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub protocol: Protocol,
    /// `OTEL_SERVICE_NAME` (default `keygate`).
    pub service_name: String,
    /// `OTEL_BSP_MAX_QUEUE_SIZE` (default 2048): finished spans waiting for export.
    pub max_queue: usize,
}

impl TelemetryConfig {
    /// The export configuration of `env`; `None` when `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is not set.
    pub fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Option<TelemetryConfig>, ConfigError> {
        let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") else {
            return Ok(None);
        };
        if !cfg!(feature = "otlp") {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "this keygate was built without the otlp feature",
            ));
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("expected an http:// or https:// URL, got {endpoint:?}"),
            ));
        }
        let protocol = match env
            .get("OTEL_EXPORTER_OTLP_PROTOCOL")
            .map(|p| p.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::Protobuf,
            Some("http/json") => Protocol::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    format!("expected http/protobuf or http/json, got {other:?}"),
                ));
            }
        };
        Ok(Some(TelemetryConfig {
            // The OTLP/HTTP convention: the variable names the collector's base URL.
            traces_url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            protocol,
            service_name: env
                .get("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| "keygate".into()),
            max_queue: env.number("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1)?,
        }))
    }
}

/// What [`crate::server::logging::init`] started; [`Guard::shutdown`] sends the spans
/// still queued when the service stops.
#[derive(Debug, Default)]
pub struct Guard {
    #[cfg(feature = "otlp")]
    exporting: Option<export::Exporting>,
}

/// A layer of the process's subscriber.
pub type BoxedLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

impl Guard {
    /// The layer exporting spans as `config` says (none without a config), and the
    /// guard that stops it.
    pub fn start(
        config: Option<&TelemetryConfig>,
    ) -> Result<(Option<BoxedLayer>, Guard), ConfigError> {
        #[cfg(feature = "otlp")]
        if let Some(config) = config {
            let (layer, exporting) = export::layer(config)?;
            return Ok((
                Some(layer),
                Guard {
                    exporting: Some(exporting),
                },
            ));
        }
        // Without the feature a configured endpoint was refused when it was read.
        let _ = config;
        Ok((None, Guard::default()))
    }

    /// Sends what is queued (waiting at most 2 s) and stops exporting.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(exporting) = self.exporting {
            exporting.shutdown();
        }
    }
}

/// Whether spans are exported in this process.
#[cfg(not(feature = "otlp"))]
pub fn active() -> bool {
    false
}

/// Spans finished while the export queue was full, for `/metrics`. Process-wide, like
/// the tracing subscriber that produces the spans.
pub static SPANS_DROPPED: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    IntCounter::new(
        "keygate_otel_spans_dropped_total",
        "Finished spans dropped because the OTLP export queue was full",
    )
    .ok()
});

/// Counts one dropped span.
#[cfg(feature = "otlp")]
pub fn span_dropped() {
    if let Some(counter) = SPANS_DROPPED.as_ref() {
        counter.inc();
    }
}

/// The trace headers to send upstream when keygate's span context is exported (then
/// the upstream's spans are children of keygate's); `None` leaves the client's own
/// `traceparent` and `tracestate` to pass through unchanged.
#[cfg(not(feature = "otlp"))]
pub fn propagation_headers() -> Option<Vec<(&'static str, String)>> {
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Option<TelemetryConfig>, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::read(&Env::new(move |k: &str| map.get(k).cloned()))
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        assert_eq!(read(&[]).unwrap(), None);
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn the_endpoint_is_a_base_url_and_the_rest_has_defaults() {
        let c = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(c.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(c.protocol, Protocol::Protobuf);
        assert_eq!(c.service_name, "keygate");
        assert_eq!(c.max_queue, 2048);
        let c = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "edge"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.protocol, Protocol::Json);
        assert_eq!((c.service_name.as_str(), c.max_queue), ("edge", 8));
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn bad_values_name_their_variable() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let var = |vars: &[(&str, &str)]| read(vars).err().map(|e| e.var);
        assert_eq!(
            var(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).as_deref(),
            Some("OTEL_EXPORTER_OTLP_ENDPOINT")
        );
        assert_eq!(
            var(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).as_deref(),
            Some("OTEL_EXPORTER_OTLP_PROTOCOL")
        );
        assert_eq!(
            var(&[endpoint, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")]).as_deref(),
            Some("OTEL_BSP_MAX_QUEUE_SIZE")
        );
    }
}
