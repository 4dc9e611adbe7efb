//! The identity headers an upstream may trust, and the removal of every `X-Auth-*`
//! header a client sent, on every route, before anything else sees the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::AuthUser;

/// The prefix of the headers keygate owns.
pub const PREFIX: &str = "x-auth-";

/// Middleware (with `from_fn`): drops every client header whose name starts with
/// `X-Auth-`, in any case and however often it is repeated.
pub async fn strip_client_identity(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    strip(req.headers_mut());
    next.call(req).await
}

/// Removes the `X-Auth-*` headers of `headers` (names are kept lower-case).
pub fn strip(headers: &mut HeaderMap) {
    let owned: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for name in owned {
        headers.remove(name);
    }
}

const USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
const ORG_ID: HeaderName = HeaderName::from_static("x-auth-org-id");
const ORG_ROLE: HeaderName = HeaderName::from_static("x-auth-org-role");
const ORG_PERMISSIONS: HeaderName = HeaderName::from_static("x-auth-org-permissions");
const TOKEN_TYPE: HeaderName = HeaderName::from_static("x-auth-token-type");
const CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");

/// The identity headers of a verified caller: `X-Auth-User-Id`, and when present
/// `X-Auth-Session-Id`, `X-Auth-Org-Id`, `X-Auth-Org-Role`, `X-Auth-Org-Permissions`,
/// `X-Auth-Token-Type`, and `X-Auth-Claims` (the claims as base64url JSON) when asked for.
pub fn headers(user: &AuthUser, forward_claims: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(7);
    let mut push = |name: HeaderName, value: &str| {
        // A value a header cannot carry (a control character) is left out, never mangled.
        if let Ok(value) = HeaderValue::from_str(value) {
            out.push((name, value));
        }
    };
    push(USER_ID, user.user_id());
    if let Some(sid) = user.session_id() {
        push(SESSION_ID, sid);
    }
    if let Some(org) = user.org() {
        push(ORG_ID, &org.id);
        if let Some(role) = &org.role {
            push(ORG_ROLE, role);
        }
        if !org.permissions.is_empty() {
            push(ORG_PERMISSIONS, &org.permissions.join(","));
        }
    }
    if forward_claims {
        push(CLAIMS, &URL_SAFE_NO_PAD.encode(user.claims().json_text()));
    }
    out.push((
        TOKEN_TYPE,
        HeaderValue::from_static(user.token_type().as_str()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identity_headers_go_in_any_case() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-auth-user-id", "evil"),
            ("X-AUTH-USER-ID", "evil2"),
            ("x-auth-org-role", "org:admin"),
            ("x-authorization-hint", "kept: not the x-auth- prefix"),
            ("authorization", "Bearer t"),
            ("x-forwarded-for", "1.2.3.4"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or(HeaderName::from_static("x")),
                HeaderValue::from_static(value),
            );
        }
        strip(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert!(names.contains(&"authorization") && names.contains(&"x-forwarded-for"));
        assert!(names.contains(&"x-authorization-hint"));
        assert!(!names.iter().any(|n| n.starts_with("x-auth-")), "{names:?}");
    }
}
