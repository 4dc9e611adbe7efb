//! The routes of the `embed` example: an application's own public, protected,
//! optional-auth and organization-guarded routes, guarded by keygate.
//!
//! `main.rs` serves them; the integration tests serve the same `routes` and call each
//! one over HTTP.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use keygate::{AuthError, AuthUser, require_auth};
use serde::Deserialize;
use serde_json::json;

/// Every route of the application.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/greeting", web::get().to(greeting))
        .route("/profile", web::get().to(profile))
        .service(
            // Like Next.js `createRouteMatcher(["/api(.*)"])` + `auth.protect()`.
            web::scope("/api")
                .wrap(from_fn(require_auth))
                .route("/projects", web::get().to(projects))
                .route("/admin", web::get().to(admin))
                .route("/invoices", web::get().to(invoices))
                .route("/billing", web::get().to(billing)),
        );
}

/// `GET /`: public.
async fn home() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "Welcome" }))
}

/// `GET /greeting`: optional authentication — a bad or missing token is anonymous.
async fn greeting(user: Option<AuthUser>) -> HttpResponse {
    let message = match &user {
        Some(user) => format!("Hello, user {}", user.user_id()),
        None => "Hello, stranger".to_string(),
    };
    HttpResponse::Ok().json(json!({ "message": message }))
}

/// `GET /profile`: requires a signed-in user.
async fn profile(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "user_id": user.user_id(),
        "session_id": user.session_id(),
        "org": user.org(),
    }))
}

/// `GET /api/projects`: any signed-in user (the scope guard already checked).
async fn projects(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "owner": user.user_id(), "projects": ["apollo", "gemini"] }))
}

/// `GET /api/admin`: only the active organization's admins.
async fn admin(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_org_role("admin")?;
    Ok(HttpResponse::Ok().json(json!({ "org": user.org().map(|o| &o.id) })))
}

/// `GET /api/invoices`: only with the `org:invoices:read` permission.
async fn invoices(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_permission("org:invoices:read")?;
    Ok(HttpResponse::Ok().json(json!({ "invoices": [] })))
}

/// The custom claims a Clerk session-token template adds:
/// `{"plan": "{{user.public_metadata.plan}}", "seats": ...}`.
#[derive(Debug, Deserialize)]
struct Billing {
    plan: String,
    #[serde(default)]
    seats: u32,
}

/// `GET /api/billing`: typed custom claims.
async fn billing(user: AuthUser) -> Result<HttpResponse, AuthError> {
    let billing: Billing = user.claims_as()?;
    Ok(HttpResponse::Ok().json(json!({ "plan": billing.plan, "seats": billing.seats })))
}
