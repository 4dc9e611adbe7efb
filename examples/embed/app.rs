//! The routes of the `embed` example: an application's own public, protected,
//! optional-auth, organization-guarded, plan-guarded and reverified-only routes,
//! guarded by keygate.
//!
//! `main.rs` serves them; the integration tests serve the same `routes` and call each
//! one over HTTP.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use keygate::{AuthError, AuthUser, FactorLevel, Reverification, require_auth};
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
                .route("/billing", web::get().to(billing))
                .route("/reports", web::get().to(reports))
                .route("/exports", web::post().to(exports))
                .route("/account", web::delete().to(delete_account))
                .route("/payouts", web::post().to(payouts)),
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

/// `GET /api/reports`: the Pro plan (the user's or the organization's, Clerk Billing).
async fn reports(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_plan("pro")?;
    Ok(HttpResponse::Ok().json(json!({ "reports": [], "plan": user.plan() })))
}

/// `POST /api/exports`: the organization's `export` feature.
async fn exports(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_feature("org:export")?;
    Ok(HttpResponse::Accepted().json(json!({ "export": "queued" })))
}

/// `DELETE /api/account`: a sensitive action, only right after the user verified
/// again (Clerk's `strict`: the second factor within 10 minutes). Otherwise the
/// answer is the one `useReverification()` turns into Clerk's verification dialog.
async fn delete_account(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_reverification(Reverification::Strict)?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": user.user_id() })))
}

/// `POST /api/payouts`: both a plan and a custom reverification (the first factor
/// within 5 minutes).
async fn payouts(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_plan("org:pro")?;
    user.require_reverification(Reverification::Custom {
        level: FactorLevel::FirstFactor,
        after_minutes: 5,
    })?;
    Ok(HttpResponse::Ok().json(json!({ "payout": "sent" })))
}
