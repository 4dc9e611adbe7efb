//! `GET /me`: who the token says the user is, with the profile Clerk's webhooks stored.

use actix_web::{HttpResponse, web};

use super::{ApiError, AppState};
use crate::{AuthUser, TokenType};

/// `200 {"user_id", "session_id", "issuer", "expires_at", "org", "plan", "features",
/// "fva", "profile", "token_type"}` (and `"scopes"` for machine tokens); 503 when the
/// database cannot be read. `plan` and `features` are Clerk Billing's `pla` and `fea`
/// as the token carries them, `fva` the factor verification ages; each `null` when absent.
///
/// `profile` always has the same four fields, `null` while unknown: the user's row is
/// written off the request path, so a first call must not look different from the
/// next one only because the row does not exist yet.
pub async fn me(user: AuthUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let profile = state.store.profile(user.user_id()).await.map_err(|e| {
        tracing::warn!("GET /me: profile lookup failed: {e}");
        ApiError::Unavailable
    })?;
    let (email, first_name, last_name, image_url) = match profile {
        Some(p) => (p.email, p.first_name, p.last_name, p.image_url),
        None => (None, None, None, None),
    };
    let profile = serde_json::json!({
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "image_url": image_url,
    });
    let mut body = serde_json::json!({
        "user_id": user.user_id(),
        "session_id": user.session_id(),
        "issuer": user.claims().iss(),
        "expires_at": user.claims().exp(),
        "org": user.org(),
        "plan": user.plan(),
        "features": user.features(),
        "fva": user.factor_verification_age(),
        "profile": profile,
        "token_type": user.token_type(),
    });
    if user.token_type() != TokenType::SessionToken {
        body["scopes"] = serde_json::json!(user.scopes());
    }
    Ok(HttpResponse::Ok().json(body))
}
