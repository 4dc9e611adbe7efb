//! `GET /healthz` (the process runs) and `GET /readyz` (tokens can be verified now).

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use super::AppState;

/// How long readiness waits for the database before calling it unreachable.
const DATABASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {"status":"ok"}` while the process runs.
pub async fn healthz() -> HttpResponse {
    // The bytes `json!` would serialize, without building and serializing a map (or
    // parsing a media type) on every request.
    let mut response = HttpResponse::Ok().body(r#"{"status":"ok"}"#);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `200 {"status":"ready","database":"ok"}` once keys are loaded (and not past
/// `JWKS_MAX_STALE_SECS`) and the database answers; else
/// `503 {"status":"unready","reason":…}`. With `READYZ_DATABASE=false` an unreachable
/// database is reported (`"database":"unreachable"`) but keeps the `200`: tokens still
/// verify in memory, and one database outage should not take every replica out of the
/// load balancer at once.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::Relaxed) {
        return unready("shutting down", None);
    }
    if let Err(not_ready) = state.authenticator.keys_ready() {
        return unready(&not_ready.to_string(), None);
    }
    let database = match tokio::time::timeout(DATABASE_PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!("readiness: database ping failed: {e}");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!(
                "readiness: database ping took over {}s",
                DATABASE_PING_TIMEOUT.as_secs()
            );
            "unreachable"
        }
    };
    if database != "ok" && state.readyz_database {
        return unready("database unreachable", Some(database));
    }
    HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "database": database }))
}

fn unready(reason: &str, database: Option<&str>) -> HttpResponse {
    let mut body = serde_json::json!({ "status": "unready", "reason": reason });
    if let Some(database) = database {
        body["database"] = database.into();
    }
    HttpResponse::ServiceUnavailable().json(body)
}
