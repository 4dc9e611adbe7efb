//! `GET /metrics` and the middleware that times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::{ApiError, ServiceState};

/// Prometheus text format.
pub async fn metrics(state: web::Data<ServiceState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| {
        log::error!("metrics encoding failed: {e}");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

/// Middleware (with `from_fn`) observing `keygate_http_request_duration_seconds`, labelled by
/// the matched route pattern so unknown paths cannot explode the label set.
pub async fn record_duration(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<ServiceState>>().cloned();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        state
            .metrics
            .request_duration
            .with_label_values(&[method.as_str(), &route, response.status().as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
