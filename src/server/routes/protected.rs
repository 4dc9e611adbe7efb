//! `GET /protected`: the seed's greeting for an authenticated user.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::AuthUser;

#[derive(Serialize)]
struct Greeting {
    message: String,
}

/// `200 {"message": "Hello, user <user_id>"}`.
pub async fn protected(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(Greeting {
        message: format!("Hello, user {}", user.user_id()),
    })
}
