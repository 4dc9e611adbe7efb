//! `GET /healthz` (the process runs) and `GET /readyz` (tokens can be verified now).

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::ServiceState;

/// How long readiness waits for the database before calling it unreachable.
const DATABASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {"status":"ok"}` while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `200 {"status":"ready"}` once keys are loaded (and not past `JWKS_MAX_STALE_SECS`) and
/// the database answers; else `503 {"status":"unready","reason":…}`.
pub async fn readyz(state: web::Data<ServiceState>) -> HttpResponse {
    let reason = if state.draining.load(Ordering::Relaxed) {
        Some("shutting down")
    } else if state.keys.has_jwks() && !state.keys.current().loaded() {
        Some("signing keys not loaded yet")
    } else if state.keys.is_stale(&state.keys.current()) {
        Some("signing keys are stale: no successful JWKS fetch within JWKS_MAX_STALE_SECS")
    } else {
        match tokio::time::timeout(DATABASE_PING_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                log::warn!("readiness: database ping failed: {e}");
                Some("database unreachable")
            }
            Err(_) => Some("database unreachable"),
        }
    };
    match reason {
        None => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unready", "reason": reason })),
    }
}
