//! Guards for whole scopes, the Actix counterpart of Next.js `createRouteMatcher` +
//! `auth.protect()`.
//!
//! Per-handler authorization (org role, permission, scope, plan, feature, step-up
//! reverification) lives on [`AuthUser`] as `require_org_role`, `require_permission`,
//! `require_scope`, `require_plan`, `require_feature` and `require_reverification`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::AuthUser;

/// Middleware (use with `actix_web::middleware::from_fn`) that answers the contract's
/// `401` for any request of the scope without a valid token; handlers inside still take
/// `AuthUser` and get the already verified user at no cost.
///
/// ```
/// # use keygate_core as keygate;
/// use actix_web::middleware::from_fn;
/// use actix_web::{HttpResponse, web};
/// use keygate::{AuthError, AuthUser, require_auth};
///
/// async fn invoices(user: AuthUser) -> Result<HttpResponse, AuthError> {
///     user.require_permission("org:invoices:read")?; // 403 insufficient_permission otherwise
///     Ok(HttpResponse::Ok().json(user.org()))
/// }
///
/// let api = web::scope("/api")
///     .wrap(from_fn(require_auth)) // every route here needs a token
///     .route("/invoices", web::get().to(invoices));
/// # let _ = api;
/// ```
pub async fn require_auth<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match req.extract::<AuthUser>().await {
        Ok(_) => Ok(next.call(req).await?.map_into_left_body()),
        // Answered here rather than raised, so the scope's own error handling sees a response.
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}
