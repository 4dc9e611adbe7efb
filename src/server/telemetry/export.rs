//! OTLP/HTTP export through the `opentelemetry` crates, and W3C trace context in and
//! out of keygate's spans.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;

use super::processor::BoundedBatch;
use super::{Protocol, TelemetryConfig};
use crate::ConfigError;

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long stopping waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether spans are exported: only then does keygate continue a client's trace in
/// its own spans and send its own span context upstream.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether export is on in this process.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The running export; [`Exporting::shutdown`] sends what is queued (bounded in time).
#[derive(Debug)]
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Exporting {
    /// Sends the queued spans and stops the export thread, waiting at most 2 s.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::debug!("OTLP export did not shut down cleanly: {e}");
        }
    }
}

/// The layer that turns keygate's spans into exported OpenTelemetry spans. Only
/// keygate's own spans (the request and its children) at `info` or above are
/// exported, whatever `RUST_LOG` says; events stay in the log.
pub fn layer(config: &TelemetryConfig) -> Result<(super::BoxedLayer, Exporting), ConfigError> {
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let url = config.traces_url.clone();
    let protocol = match config.protocol {
        Protocol::Protobuf => opentelemetry_otlp::Protocol::HttpBinary,
        Protocol::Json => opentelemetry_otlp::Protocol::HttpJson,
    };
    let exporter_resource = resource.clone();
    let processor = BoundedBatch::start(
        move || {
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_protocol(protocol)
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            exporter.set_resource(&exporter_resource);
            Ok(exporter)
        },
        config.max_queue,
    )
    .map_err(|problem| {
        ConfigError::new(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("cannot export spans: {problem}"),
        )
    })?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("keygate");
    ACTIVE.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("keygate") && *meta.level() <= Level::INFO
        }))
        .boxed();
    Ok((layer, Exporting { provider }))
}

/// Makes `span` (a request's) continue the trace of the request's `traceparent`.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !active() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The `traceparent` (and `tracestate`) naming the current span, when spans are
/// exported; `None` leaves the client's own headers to pass through unchanged.
pub fn propagation_headers() -> Option<Vec<(&'static str, String)>> {
    if !active() {
        return None;
    }
    let context = Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut out = Fields(Vec::with_capacity(2));
    TraceContextPropagator::new().inject_context(&context, &mut out);
    Some(out.0)
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Fields(Vec<(&'static str, String)>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        let name = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        self.0.push((name, value));
    }
}
