//! CORS: a page on another origin (the Next.js frontend) calls keygate, or the backend
//! behind it, with `fetch`.
//!
//! `actix-cors` does the protocol. keygate decides which origins (`CORS_ALLOWED_ORIGINS`,
//! else the `azp` origins of `JWT_AUTHORIZED_PARTIES`), answers every preflight itself
//! before routing and authentication, and gives its refusals the JSON body of every
//! other error. The middleware sits outside authentication, so `401` and `403` carry the
//! headers too and the page can read why it was refused.

use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::ConfigError;
use crate::config::env::Env;

/// How long a browser may cache a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The methods a page may use.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Headers a page may always send: the token and a JSON body.
const BASE_HEADERS: [HeaderName; 2] = [header::AUTHORIZATION, header::CONTENT_TYPE];

/// Headers a page may read besides the CORS-safelisted ones: the challenge that says why
/// a token was refused, and the id to quote when reporting a problem.
const EXPOSED_HEADERS: [HeaderName; 2] = [
    header::WWW_AUTHENTICATE,
    HeaderName::from_static("x-request-id"),
];

/// Which cross-origin callers keygate answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// The allowed origins, as the browser sends them (`https://app.example.com`).
    pub origins: Vec<String>,
    /// `CORS_ALLOWED_HEADERS`: request headers allowed beyond `Authorization` and
    /// `Content-Type`.
    pub extra_headers: Vec<HeaderName>,
}

impl CorsConfig {
    /// `CORS_ALLOWED_ORIGINS` (unset: `parties`, the `JWT_AUTHORIZED_PARTIES`; empty:
    /// CORS off) and `CORS_ALLOWED_HEADERS`. `None` when no origin is allowed.
    /// `parties` are the authorized parties with the variable that set them.
    pub fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        parties: (&'static str, &[String]),
    ) -> Result<Option<CorsConfig>, ConfigError> {
        // Present but empty is an explicit "off", unlike the other variables.
        let (var, listed) = match env.raw("CORS_ALLOWED_ORIGINS") {
            Some(raw) => ("CORS_ALLOWED_ORIGINS", split(&raw)),
            None => (parties.0, parties.1.to_vec()),
        };
        let mut origins = Vec::with_capacity(listed.len());
        for item in &listed {
            let origin = origin(item).map_err(|problem| {
                let problem = if var != "CORS_ALLOWED_ORIGINS" {
                    format!(
                        "{problem} (CORS_ALLOWED_ORIGINS is unset, so the authorized parties are the allowed origins; set it to choose them)"
                    )
                } else {
                    problem
                };
                ConfigError::new(var, problem)
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if origins.is_empty() {
            return Ok(None);
        }
        let mut extra_headers = Vec::new();
        for name in split(&env.get("CORS_ALLOWED_HEADERS").unwrap_or_default()) {
            let parsed = HeaderName::try_from(name.as_str()).map_err(|e| {
                ConfigError::caused_by(
                    "CORS_ALLOWED_HEADERS",
                    format!("{name:?} is not a header name"),
                    e,
                )
            })?;
            extra_headers.push(parsed);
        }
        Ok(Some(CorsConfig {
            origins,
            extra_headers,
        }))
    }

    /// The middleware for one worker.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods(METHODS)
            .allowed_headers(BASE_HEADERS.iter().chain(&self.extra_headers).cloned())
            .expose_headers(EXPOSED_HEADERS)
            .supports_credentials()
            .max_age(Some(PREFLIGHT_MAX_AGE.as_secs() as usize))
            // A call from a disallowed origin goes on without CORS headers: the browser
            // keeps the answer from the page, and non-browser clients are unaffected.
            .block_on_origin_mismatch(false);
        for origin in &self.origins {
            cors = cors.allowed_origin(origin);
        }
        cors
    }
}

fn split(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `item` as the `Origin` header a browser sends: scheme and authority, no path.
fn origin(item: &str) -> Result<String, String> {
    if item == "*" {
        return Err(
            "\"*\" is not allowed: requests carry credentials, so every origin must be listed"
                .into(),
        );
    }
    let trimmed = item.strip_suffix('/').unwrap_or(item);
    let uri: Uri = trimmed
        .parse()
        .map_err(|_| format!("{item:?} is not an origin like https://app.example.com"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri
        .path_and_query()
        .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/");
    if !scheme_ok || uri.authority().is_none() || !bare || trimmed.contains('@') {
        return Err(format!(
            "{item:?} is not an origin like https://app.example.com (scheme and host, no path)"
        ));
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Whether the request is a CORS preflight, which `actix-cors` answers itself.
fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Shapes `actix-cors`' answers (it wraps the CORS middleware): a preflight gets `204`
/// when allowed and keygate's JSON error body when the origin, method or headers are
/// not; any other answer without `Access-Control-Allow-Origin` (another origin, or no
/// `Origin` at all) loses the CORS headers `actix-cors` adds regardless.
pub async fn shape<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if !is_preflight(&req) {
        let mut res = next.call(req).await?;
        let headers = res.headers_mut();
        if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
            headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
        }
        return Ok(res.map_into_left_body());
    }
    let res = next.call(req).await?;
    let (req, res) = if res.status().is_success() {
        let (req, mut res) = res.into_parts();
        *res.status_mut() = StatusCode::NO_CONTENT;
        (req, res.drop_body().map_into_boxed_body())
    } else {
        let detail = res
            .response()
            .error()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "CORS preflight refused".into());
        let (req, _) = res.into_parts();
        (req, PreflightRefused(detail).error_response())
    };
    Ok(ServiceResponse::new(req, res).map_into_right_body())
}

/// A preflight this configuration does not allow.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PreflightRefused(String);

impl ResponseError for PreflightRefused {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = crate::error_response(StatusCode::FORBIDDEN, &self.0, "cors_not_allowed");
        res.headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("Origin"));
        res
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], parties: &[&str]) -> Result<Option<CorsConfig>, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env =
            Env::new(move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
        let parties: Vec<String> = parties.iter().map(|p| p.to_string()).collect();
        CorsConfig::read(&env, ("JWT_AUTHORIZED_PARTIES", &parties))
    }

    #[test]
    fn origins_default_to_the_authorized_parties() {
        let config = read(&[], &["https://app.example.com/", "http://localhost:3000"])
            .unwrap()
            .unwrap();
        assert_eq!(
            config.origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(read(&[], &[]).unwrap(), None);
    }

    #[test]
    fn an_explicit_list_wins_and_empty_turns_cors_off() {
        let config = read(
            &[("CORS_ALLOWED_ORIGINS", " https://A.example.com , ")],
            &["https://app.example.com"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.origins, ["https://a.example.com"]);
        assert_eq!(
            read(
                &[("CORS_ALLOWED_ORIGINS", "")],
                &["https://app.example.com"]
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn wildcards_paths_and_bad_headers_are_refused_naming_the_variable() {
        for (vars, parties, var) in [
            (
                &[("CORS_ALLOWED_ORIGINS", "*")][..],
                &[][..],
                "CORS_ALLOWED_ORIGINS",
            ),
            (
                &[("CORS_ALLOWED_ORIGINS", "https://a.example.com/app")],
                &[],
                "CORS_ALLOWED_ORIGINS",
            ),
            (
                &[("CORS_ALLOWED_ORIGINS", "a.example.com")],
                &[],
                "CORS_ALLOWED_ORIGINS",
            ),
            (&[], &["ftp://files.example.com"], "JWT_AUTHORIZED_PARTIES"),
            (
                &[
                    ("CORS_ALLOWED_ORIGINS", "https://a.example.com"),
                    ("CORS_ALLOWED_HEADERS", "bad header"),
                ],
                &[],
                "CORS_ALLOWED_HEADERS",
            ),
        ] {
            let err = read(vars, parties).unwrap_err();
            assert!(err.to_string().contains(var), "{vars:?}: {err}");
        }
    }

    #[test]
    fn extra_headers_are_added_to_the_base_ones() {
        let config = read(
            &[
                ("CORS_ALLOWED_ORIGINS", "https://a.example.com"),
                ("CORS_ALLOWED_HEADERS", "X-Tenant, x-trace"),
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.extra_headers, ["x-tenant", "x-trace"]);
    }
}
