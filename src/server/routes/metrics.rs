//! `GET /metrics` (requests are timed by the request middleware, `telemetry::span`).

use actix_web::{HttpResponse, web};

use super::{ApiError, AppState};

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| {
        tracing::error!("metrics encoding failed: {e}");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
