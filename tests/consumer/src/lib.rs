//! A consumer of the keygate library core (`default-features = false`): its routes, as
//! an application would write them. The tests serve them against a mock JWKS.

use actix_web::{HttpResponse, web};
use keygate::{AuthError, AuthUser};

/// `GET /me` for any signed-in user, `GET /admin` for org admins only.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me))
        .route("/admin", web::get().to(admin));
}

async fn me(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().body(user.user_id().to_string())
}

async fn admin(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_org_role("admin")?;
    Ok(HttpResponse::Ok().body("admin"))
}
