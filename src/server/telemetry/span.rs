//! The span of one request, built for `tracing-actix-web`'s `TracingLogger`: the
//! request id, the method, the route pattern and the status — never the query string
//! or a header value, which may hold tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::RootSpanBuilder;

use crate::server::request_id::RequestId;
use crate::server::routes::RouteLabel;

/// The request span's name; the log filter always lets it through so that every log
/// line about a request carries its `request_id`, whatever `RUST_LOG` says.
pub const NAME: &str = "request";

/// The request span of keygate (see the module).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request.extensions().get::<RequestId>().cloned();
        // Given at creation rather than recorded after: every record makes the log
        // layer format the span's fields again.
        let span = tracing::info_span!(
            "request",
            request_id = id.as_ref().map(|id| tracing::field::display(id.as_str())),
            http.method = %request.method().as_str(),
            http.route = Empty,
            http.status_code = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
        );
        #[cfg(feature = "otlp")]
        if super::export::active() {
            // Named now: once a child span exists the exported span can no longer
            // be renamed. The pattern is matched here only when spans are exported.
            let route = request.match_pattern();
            let route = route.as_deref().unwrap_or_else(|| {
                request
                    .app_data::<RouteLabel>()
                    .map_or("unmatched", |label| label.0)
            });
            span.record("otel.name", format!("{} {route}", request.method()));
            span.record("otel.kind", "server");
            super::export::continue_trace(&span, request.headers());
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // The outcome is for exported spans; a log line after the request's end
        // does not exist, and recording would cost the log layer a reformat.
        if !super::active() {
            return;
        }
        let (status, route) = match outcome {
            Ok(response) => (
                response.status(),
                response
                    .request()
                    .app_data::<RouteLabel>()
                    .map_or("unmatched", |label| label.0),
            ),
            Err(error) => (error.as_response_error().status_code(), "unmatched"),
        };
        span.record("http.status_code", status.as_u16());
        span.record("http.route", tracing::field::display(route));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}
