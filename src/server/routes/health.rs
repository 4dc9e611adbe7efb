//! `GET /healthz` (the process runs) and `GET /readyz` (tokens can be verified now).

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::AppState;

/// How long readiness waits for the database before calling it unreachable.
const DATABASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {"status":"ok"}` while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `200 {"status":"ready"}` once keys are loaded (and not past `JWKS_MAX_STALE_SECS`) and
/// the database answers; else `503 {"status":"unready","reason":…}`.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reason = if state.draining.load(Ordering::Relaxed) {
        Some("shutting down".to_string())
    } else if let Err(not_ready) = state.authenticator.keys_ready() {
        Some(not_ready.to_string())
    } else {
        match tokio::time::timeout(DATABASE_PING_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::warn!("readiness: database ping failed: {e}");
                Some("database unreachable".to_string())
            }
            Err(_) => Some("database unreachable".to_string()),
        }
    };
    match reason {
        None => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unready", "reason": reason })),
    }
}
