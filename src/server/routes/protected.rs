//! `GET /protected`: the seed's greeting for an authenticated user.

use actix_web::HttpResponse;

use crate::AuthUser;

/// `200 {"message": "Hello, user <user_id>"}`.
pub async fn protected(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok()
        .json(serde_json::json!({ "message": format!("Hello, user {}", user.user_id()) }))
}
