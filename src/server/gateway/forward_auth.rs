//! `/auth` and `/auth/<path>`, any method: the authentication endpoint of a proxy
//! that is already there (nginx `auth_request`, Traefik `forwardAuth`, Caddy
//! `forward_auth`, Envoy `ext_authz`), answering `200` with the identity headers, or
//! the contract's `401`/`403`/`503`.
//!
//! The original request is read from `X-Forwarded-Method` + `X-Forwarded-Uri`
//! (Traefik, Caddy), else `X-Original-Method` + `X-Original-URI` (nginx), else the
//! request's own method and the path after `/auth` (Envoy's `path_prefix`); no original
//! URI at all means `/`.

use std::borrow::Cow;

use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};

use super::normalize::normalize;
use super::{Gateway, GatewayError, identity};

/// The path forward auth is served under.
pub const PATH: &str = "/auth";

/// Where the proxy says the request was going.
struct Original<'r> {
    method: Cow<'r, str>,
    uri: Cow<'r, str>,
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

fn original(req: &HttpRequest) -> Original<'_> {
    let pairs = [
        (&FORWARDED_METHOD, &FORWARDED_URI),
        (&ORIGINAL_METHOD, &ORIGINAL_URI),
    ];
    for (method, uri) in pairs {
        if let Some(uri) = header(req, uri) {
            return Original {
                method: upper(header(req, method).unwrap_or(req.method().as_str())),
                uri: Cow::Borrowed(uri),
            };
        }
    }
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

/// The forward-auth answer for the request `req` describes.
pub async fn forward_auth(
    req: HttpRequest,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, GatewayError> {
    let original = original(&req);
    let path = normalize(path_of(&original.uri))?;
    let user = gateway.decide(&req, &original.method, &path).await?;
    let mut response = HttpResponse::Ok().finish();
    if let Some(user) = user {
        let headers = response.headers_mut();
        for (name, value) in identity::headers(&user, gateway.forward_claims) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
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
        let o = original(&traefik);
        assert_eq!((o.method.as_ref(), o.uri.as_ref()), ("POST", "/api/x?y=1"));
        let nginx = TestRequest::get()
            .uri("/auth")
            .insert_header(("X-Original-Method", "DELETE"))
            .insert_header(("X-Original-URI", "/api/admin"))
            .to_http_request();
        let o = original(&nginx);
        assert_eq!(
            (o.method.as_ref(), o.uri.as_ref()),
            ("DELETE", "/api/admin")
        );
        let envoy = TestRequest::put()
            .uri("/auth/api/items?id=2")
            .to_http_request();
        let o = original(&envoy);
        assert_eq!(
            (o.method.as_ref(), o.uri.as_ref()),
            ("PUT", "/api/items?id=2")
        );
        let bare = TestRequest::get().uri("/auth").to_http_request();
        assert_eq!(original(&bare).uri, "/");
    }

    #[test]
    fn the_path_of_a_target() {
        assert_eq!(path_of("/a/b?c=/api/public"), "/a/b");
        assert_eq!(path_of("https://app.example.com/a?x"), "/a");
        assert_eq!(path_of("http://h"), "/");
        assert_eq!(path_of("/a#frag"), "/a");
    }
}
