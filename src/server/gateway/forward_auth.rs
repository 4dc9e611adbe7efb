//! `/auth` and `/auth/<path>`, any method: the authentication endpoint of a proxy
//! that is already there (nginx `auth_request`, Traefik `forwardAuth`, Caddy
//! `forward_auth`, Envoy `ext_authz`), answering `200` with the identity headers, or
//! the contract's `401`/`403`/`503`.
//!
//! The original request is read by one convention (`FORWARD_AUTH_HEADERS`):
//! `X-Forwarded-Method` + `X-Forwarded-Uri` (Traefik, Caddy), `X-Original-Method` +
//! `X-Original-URI` (nginx), or the request's own method and the path after `/auth`
//! (Envoy's `path_prefix`); no original URI at all means `/`. In `auto`, the first
//! convention present decides, and conventions that name different requests are a
//! refusal: a proxy overwrites the headers of its own convention, not the others, so a
//! client could otherwise choose the path keygate decides on.

use std::borrow::Cow;
use std::str::FromStr;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};

use super::normalize::normalize;
use super::{Gateway, GatewayError, identity, identity_token, ws};

/// The path forward auth is served under.
pub const PATH: &str = "/auth";

/// Which headers name the request a proxy asks about (`FORWARD_AUTH_HEADERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik, Caddy).
    XForwarded,
    /// `X-Original-Method` and `X-Original-URI` (nginx).
    XOriginal,
    /// The request's own method and the path after `/auth` (Envoy).
    Envoy,
    /// The first present of the three; disagreeing conventions are refused.
    Auto,
}

impl FromStr for Convention {
    type Err = String;

    fn from_str(value: &str) -> Result<Convention, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "x-forwarded" => Ok(Convention::XForwarded),
            "x-original" => Ok(Convention::XOriginal),
            "envoy" => Ok(Convention::Envoy),
            "auto" => Ok(Convention::Auto),
            _ => Err(format!(
                "expected x-forwarded, x-original, envoy or auto, got {value:?}"
            )),
        }
    }
}

/// Where the proxy says the request was going.
#[derive(Debug)]
struct Original<'r> {
    method: Cow<'r, str>,
    uri: Cow<'r, str>,
}

impl Original<'_> {
    /// The path keygate decides on.
    fn path(&self) -> Result<String, GatewayError> {
        Ok(normalize(path_of(&self.uri))?)
    }
}

const FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

fn header<'r>(req: &'r HttpRequest, name: &HeaderName) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `method` upper-cased, borrowed when it already is.
fn upper(method: &str) -> Cow<'_, str> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(method.to_ascii_uppercase())
    } else {
        Cow::Borrowed(method)
    }
}

/// The request a header convention names, when either of its headers is present.
fn by_headers<'r>(
    req: &'r HttpRequest,
    method: &HeaderName,
    uri: &HeaderName,
) -> Option<Original<'r>> {
    let (method, uri) = (header(req, method), header(req, uri));
    if method.is_none() && uri.is_none() {
        return None;
    }
    Some(Original {
        method: upper(method.unwrap_or(req.method().as_str())),
        uri: Cow::Borrowed(uri.unwrap_or("/")),
    })
}

/// The request Envoy's `path_prefix` names: this request's method, the path after
/// `/auth`, and its query.
fn by_path(req: &HttpRequest) -> Original<'_> {
    let tail = req.path().strip_prefix(PATH).unwrap_or("");
    let uri = match req.query_string() {
        "" => tail.to_string(),
        query => format!("{tail}?{query}"),
    };
    Original {
        method: Cow::Borrowed(req.method().as_str()),
        uri: Cow::Owned(if uri.is_empty() || uri.starts_with('?') {
            format!("/{uri}")
        } else {
            uri
        }),
    }
}

/// The original request by `convention`, and the path to decide on.
fn original(
    req: &HttpRequest,
    convention: Convention,
) -> Result<(Original<'_>, String), GatewayError> {
    let forwarded = || by_headers(req, &FORWARDED_METHOD, &FORWARDED_URI);
    let original = || by_headers(req, &ORIGINAL_METHOD, &ORIGINAL_URI);
    let bare = || Original {
        method: Cow::Borrowed(req.method().as_str()),
        uri: Cow::Borrowed("/"),
    };
    let chosen = match convention {
        Convention::XForwarded => forwarded().unwrap_or_else(bare),
        Convention::XOriginal => original().unwrap_or_else(bare),
        Convention::Envoy => by_path(req),
        Convention::Auto => {
            // Envoy's convention counts as present only when a path follows `/auth`:
            // every other proxy calls `/auth` itself.
            let envoy = req
                .path()
                .strip_prefix(PATH)
                .is_some_and(|tail| tail.len() > 1)
                .then(|| by_path(req));
            let mut present = [forwarded(), original(), envoy].into_iter().flatten();
            let Some(first) = present.next() else {
                let bare = by_path(req);
                let path = bare.path()?;
                return Ok((bare, path));
            };
            let path = first.path()?;
            for other in present {
                if other.method != first.method || other.path()? != path {
                    return Err(GatewayError::ConflictingOriginal);
                }
            }
            return Ok((first, path));
        }
    };
    let path = chosen.path()?;
    Ok((chosen, path))
}

/// The path of a request target: an absolute URL's path, or the target up to its query.
fn path_of(uri: &str) -> &str {
    let without_scheme = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .map(|rest| rest.find('/').map_or("/", |i| &rest[i..]));
    let target = without_scheme.unwrap_or(uri);
    let end = target.find(['?', '#']).unwrap_or(target.len());
    &target[..end]
}

/// Whether the original request is a CORS preflight from an allowed origin: browsers
/// send no credentials on one, so it is let through for the backend or proxy to answer.
fn allowed_preflight(req: &HttpRequest, method: &str, origins: &[String]) -> bool {
    method == Method::OPTIONS.as_str()
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|origin| origins.iter().any(|allowed| allowed == origin))
}

/// The forward-auth answer for the request `req` describes.
pub async fn forward_auth(
    req: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, GatewayError> {
    let (original, path) = original(&req, gateway.forward_auth.convention)?;
    ws::check_method(&req, &original.method)?;
    if allowed_preflight(
        &req,
        &original.method,
        &gateway.forward_auth.preflight_origins,
    ) {
        return Ok(HttpResponse::Ok().finish());
    }
    let user = gateway.decide(&req, &original.method, &path).await?;
    let signed = gateway.signed_identity(user.as_ref())?;
    let mut response = HttpResponse::Ok().finish();
    if let Some(user) = user {
        let headers = response.headers_mut();
        for (name, value) in identity::headers(&user, gateway.forward_claims) {
            headers.insert(name, value);
        }
        if let Some(signed) = signed {
            headers.insert(identity_token::HEADER, signed);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_original_request_by_each_convention() {
        let traefik = TestRequest::get()
            .uri("/auth")
            .insert_header(("X-Forwarded-Method", "post"))
            .insert_header(("X-Forwarded-Uri", "/api/x?y=1"))
            .insert_header(("X-Original-URI", "/ignored"))
            .to_http_request();
        assert!(matches!(
            original(&traefik, Convention::Auto),
            Err(GatewayError::ConflictingOriginal)
        ));
        let (o, path) = original(&traefik, Convention::XForwarded).unwrap();
        assert_eq!((o.method.as_ref(), o.uri.as_ref()), ("POST", "/api/x?y=1"));
        assert_eq!(path, "/api/x");
        let nginx = TestRequest::get()
            .uri("/auth")
            .insert_header(("X-Original-Method", "DELETE"))
            .insert_header(("X-Original-URI", "/api/admin"))
            .to_http_request();
        let (o, _) = original(&nginx, Convention::Auto).unwrap();
        assert_eq!(
            (o.method.as_ref(), o.uri.as_ref()),
            ("DELETE", "/api/admin")
        );
        let envoy = TestRequest::put()
            .uri("/auth/api/items?id=2")
            .to_http_request();
        let (o, _) = original(&envoy, Convention::Auto).unwrap();
        assert_eq!(
            (o.method.as_ref(), o.uri.as_ref()),
            ("PUT", "/api/items?id=2")
        );
        let bare = TestRequest::get().uri("/auth").to_http_request();
        assert_eq!(original(&bare, Convention::Auto).unwrap().0.uri, "/");
        assert_eq!(original(&bare, Convention::XOriginal).unwrap().0.uri, "/");
    }

    #[test]
    fn the_path_of_a_target() {
        assert_eq!(path_of("/a/b?c=/api/public"), "/a/b");
        assert_eq!(path_of("https://app.example.com/a?x"), "/a");
        assert_eq!(path_of("http://h"), "/");
        assert_eq!(path_of("/a#frag"), "/a");
    }
}
