//! `GET /metrics` and the middleware that times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::{ApiError, AppState, RouteLabel};

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

/// Middleware (with `from_fn`) observing `keygate_http_request_duration_seconds`, labelled by
/// the [`RouteLabel`] of the resource that answered (`unmatched` for none), so unknown
/// paths cannot explode the label set.
pub async fn record_duration(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .app_data::<RouteLabel>()
            .map_or("unmatched", |label| label.0);
        state.metrics.observe_request(
            method.as_str(),
            route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}
