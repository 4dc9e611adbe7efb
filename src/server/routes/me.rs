//! `GET /me`: who the token says the user is, with the profile Clerk's webhooks stored.

use actix_web::{HttpResponse, web};

use super::{ApiError, AppState};
use crate::{AuthUser, TokenType};

/// `200 {"user_id", "session_id", "issuer", "expires_at", "org", "profile", "token_type"}`
/// (and `"scopes"` for machine tokens); 503 when the database cannot be read.
pub async fn me(user: AuthUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let profile = state.store.profile(user.user_id()).await.map_err(|e| {
        tracing::warn!("GET /me: profile lookup failed: {e}");
        ApiError::Unavailable
    })?;
    let profile = profile.map(|p| {
        serde_json::json!({
            "email": p.email,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "image_url": p.image_url,
        })
    });
    let mut body = serde_json::json!({
        "user_id": user.user_id(),
        "session_id": user.session_id(),
        "issuer": user.claims().iss(),
        "expires_at": user.claims().exp(),
        "org": user.org(),
        "profile": profile,
        "token_type": user.token_type(),
    });
    if user.token_type() != TokenType::SessionToken {
        body["scopes"] = serde_json::json!(user.scopes());
    }
    Ok(HttpResponse::Ok().json(body))
}
