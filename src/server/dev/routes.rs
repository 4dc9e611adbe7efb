//! The `/dev` routes of `keygate dev`: the sign-in page, the JWKS the service's own
//! rotation actor fetches, `POST /dev/token`, and `GET /dev/step-up`, a route that
//! requires a recent reverification so the step-up answer can be tried.
//!
//! They are mounted only in `keygate dev` (the application is built with a
//! [`DevIssuer`]), never by `serve` or the tests' ordinary app, so a production deployment has no way to mint tokens. Failures are one
//! [`DevError`] enum mapped to HTTP in one place, with the service's
//! `{"detail", "code"}` body shape.

use std::sync::Arc;

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{AuthUser, FactorLevel, Reverification};

use super::issuer::{DEFAULT_SUBJECT, DEFAULT_TTL_SECS, DevIssuer, IssuerError, MAX_TTL_SECS};

/// The sign-in page, embedded so the binary needs no asset directory.
const PAGE: &str = include_str!("page.html");

/// Why a `/dev` request failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The request body is not JSON of the expected shape, or a value is out of range.
    #[error("{0}")]
    InvalidRequest(String),
    /// Signing failed; the cause goes to the log, the body stays generic.
    #[error("internal error")]
    Signing(#[from] IssuerError),
}

impl ResponseError for DevError {
    fn status_code(&self) -> StatusCode {
        match self {
            DevError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            DevError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (detail, code) = match self {
            DevError::InvalidRequest(detail) => (detail.as_str(), "invalid_request"),
            DevError::Signing(cause) => {
                tracing::error!("dev issuer: {cause}");
                ("Internal error", "internal")
            }
        };
        crate::error_response(self.status_code(), detail, code)
    }
}

/// The body of `POST /dev/token`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user id (`sub`); defaults to `user_dev`.
    pub sub: Option<String>,
    /// Lifetime in seconds, 1..=86400; defaults to 3600.
    pub ttl_secs: Option<u64>,
    /// Claims written over the standard ones.
    pub claims: Option<Map<String, Value>>,
}

/// Registers the `/dev` routes for `issuer`.
pub fn configure(issuer: Arc<DevIssuer>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        // Malformed JSON gets the same body as every other bad request.
        let json_config = web::JsonConfig::default().error_handler(|err, _req| {
            let detail = match err {
                JsonPayloadError::ContentType => {
                    "expected a JSON body with Content-Type: application/json".to_string()
                }
                other => format!("invalid JSON body: {other}"),
            };
            DevError::InvalidRequest(detail).into()
        });
        cfg.service(
            web::scope("/dev")
                .app_data(crate::server::routes::RouteLabel("/dev"))
                .app_data(web::Data::from(issuer.clone()))
                .app_data(json_config)
                .route("", web::get().to(page))
                .route("/", web::get().to(page))
                .route("/jwks.json", web::get().to(jwks))
                .route("/token", web::post().to(token))
                .route("/step-up", web::get().to(step_up)),
        );
    }
}

/// `GET /dev`: the self-contained sign-in page.
async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(PAGE)
}

/// `GET /dev/jwks.json`: the public key, fetched by the service's rotation actor.
async fn jwks(issuer: web::Data<DevIssuer>) -> HttpResponse {
    HttpResponse::Ok().json(issuer.jwks())
}

/// `POST /dev/token`: `{"token": "..."}` for the requested user.
async fn token(
    issuer: web::Data<DevIssuer>,
    request: web::Json<TokenRequest>,
) -> Result<HttpResponse, DevError> {
    let request = request.into_inner();
    let sub = request.sub.unwrap_or_else(|| DEFAULT_SUBJECT.to_string());
    if sub.trim().is_empty() {
        return Err(DevError::InvalidRequest("sub must not be empty".into()));
    }
    let ttl_secs = request.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(DevError::InvalidRequest(format!(
            "ttl_secs must be between 1 and {MAX_TTL_SECS}, got {ttl_secs}"
        )));
    }
    let token = issuer.token(&sub, ttl_secs, &request.claims.unwrap_or_default())?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({ "token": token })))
}

/// The query of `GET /dev/step-up`: a preset, or a level and minutes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpQuery {
    /// `strict_mfa`, `strict`, `moderate` or `lax`.
    pub reverification: Option<String>,
    /// `first_factor`, `second_factor` or `multi_factor` (with `after_minutes`).
    pub level: Option<String>,
    /// Minutes, at least 1 (with `level`).
    pub after_minutes: Option<u32>,
}

impl StepUpQuery {
    fn requirement(&self) -> Result<Reverification, DevError> {
        match (&self.reverification, &self.level, self.after_minutes) {
            (Some(preset), None, None) => preset.parse::<Reverification>().map_err(|e| DevError::InvalidRequest(e.to_string())),
            (None, Some(level), Some(after_minutes)) if after_minutes > 0 => {
                let level = level.parse::<FactorLevel>().map_err(|e| DevError::InvalidRequest(e.to_string()))?;
                Ok(Reverification::Custom {
                    level,
                    after_minutes,
                })
            }
            _ => Err(DevError::InvalidRequest(
                "expected ?reverification=<preset> or ?level=<level>&after_minutes=<minutes, at least 1>"
                    .into(),
            )),
        }
    }
}

/// `GET /dev/step-up?reverification=strict`: a route guarded by the library's
/// `require_reverification`, so the page (or `curl`) sees the answer a Next.js page's
/// `useReverification()` receives: `200`, or `403 reverification_required` with Clerk's
/// `clerk_error`.
async fn step_up(
    user: AuthUser,
    query: web::Query<StepUpQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let requirement = query.requirement()?;
    user.require_reverification(requirement)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": format!("Reverified ({requirement}) as user {}", user.user_id()),
        "fva": user.factor_verification_age(),
    })))
}
