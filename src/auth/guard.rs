//! Guards for whole scopes, the Actix counterpart of Next.js `createRouteMatcher` +
//! `auth.protect()`: `web::scope("/api").wrap(from_fn(require_auth))`.
//!
//! Per-handler authorization (org role, permission) lives on [`AuthUser`] as
//! `require_org_role` and `require_permission`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::AuthUser;

/// Middleware (use with `actix_web::middleware::from_fn`) that answers 401 for any
/// request of the scope without a valid token; handlers inside still take `AuthUser`
/// and get the already verified user at no cost.
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
