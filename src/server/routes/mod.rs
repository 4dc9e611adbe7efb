//! Thin HTTP handlers: they take an `AuthUser` or shared state and shape JSON.
//! They never parse tokens.

mod health;
mod me;
mod metrics;
pub mod oauth;
mod protected;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

use super::metrics::Metrics;
use super::store::Store;
use crate::Authenticator;

pub use health::{healthz, readyz};
pub use me::me;
pub use metrics::metrics;
pub use protected::protected;

/// State the non-auth routes read, shared as `web::Data<AppState>`.
pub struct AppState {
    /// The authenticator (for readiness).
    pub authenticator: Authenticator,
    /// The database.
    pub store: Store,
    /// Metrics.
    pub metrics: Metrics,
    /// Set once shutdown began: `/readyz` answers 503 while requests drain.
    pub draining: Arc<AtomicBool>,
    /// `READYZ_DATABASE`: whether an unreachable database makes `/readyz` 503.
    pub readyz_database: bool,
}

/// Failures of routes other than authentication; 5xx bodies stay generic.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A dependency (the database) failed; the cause went to the log.
    #[error("service unavailable")]
    Unavailable,
    /// Metrics could not be encoded.
    #[error("internal error")]
    Internal,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (detail, code) = match self {
            ApiError::Unavailable => ("Service unavailable", "unavailable"),
            ApiError::Internal => ("Internal error", "internal"),
        };
        crate::error_response(self.status_code(), detail, code)
    }
}

/// The `route` label of a resource's requests in the duration histogram, attached to
/// the resource so the metrics middleware does not match the path a second time.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// A resource at `path` whose requests are labelled with `path`.
pub fn labelled(path: &'static str) -> actix_web::Resource {
    web::resource(path).app_data(RouteLabel(path))
}

/// Registers the routes of section 3 of the contract (webhooks are added by the app).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(labelled("/protected").route(web::get().to(protected)))
        .service(labelled("/me").route(web::get().to(me)));
    configure_operations(cfg, ["/healthz", "/readyz", "/metrics"]);
}

/// The routes operations use, under their paths and with these labels (in proxy mode
/// they live under `/_keygate/`, inside a scope, and are labelled with the full path).
pub fn configure_operations(cfg: &mut web::ServiceConfig, labels: [&'static str; 3]) {
    let [health, ready, metrics_label] = labels;
    cfg.service(
        web::resource("/healthz")
            .app_data(RouteLabel(health))
            .route(web::get().to(healthz)),
    )
    .service(
        web::resource("/readyz")
            .app_data(RouteLabel(ready))
            .route(web::get().to(readyz)),
    )
    .service(
        web::resource("/metrics")
            .app_data(RouteLabel(metrics_label))
            .route(web::get().to(metrics)),
    );
}
