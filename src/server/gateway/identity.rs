//! The identity headers an upstream may trust, and the removal of every header a
//! client sent that an upstream could take for one, on every route, before anything
//! else sees the request.
//!
//! Header names are compared as CGI, WSGI and Rack servers read them: case-insensitively
//! and with `_` read as `-` (`X_Auth_User_Id` arrives there as `HTTP_X_AUTH_USER_ID`,
//! the same variable as `X-Auth-User-Id`).

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{AuthError, AuthUser, Rejection};

/// The prefix of the headers keygate owns.
pub const PREFIX: &str = "x-auth-";

/// Headers with which some frameworks route a request to another path or method than
/// its request line names; the rules decided on the request line.
const ROUTING_OVERRIDES: [&str; 5] = [
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether `name` (lower-case, as header maps keep it) reads as `spelled` once `_` is
/// read as `-`, in full or, with `prefix`, at its start.
fn reads_as(name: &str, spelled: &str, prefix: bool) -> bool {
    let (name, spelled) = (name.as_bytes(), spelled.as_bytes());
    let len_ok = if prefix {
        name.len() >= spelled.len()
    } else {
        name.len() == spelled.len()
    };
    len_ok
        && name
            .iter()
            .zip(spelled)
            .all(|(&n, &s)| n == s || (n == b'_' && s == b'-'))
}

/// Whether a client header named `name` would pass for one of keygate's.
pub fn is_identity_name(name: &str) -> bool {
    reads_as(name, PREFIX, true)
}

/// Whether a client header named `name` could route the request elsewhere.
pub fn is_routing_override(name: &str) -> bool {
    ROUTING_OVERRIDES
        .iter()
        .any(|spelled| reads_as(name, spelled, false))
}

/// Removes the headers of `headers` that read as `X-Auth-*`, in any case and spelling
/// and however often repeated (the request middleware calls it for every request).
pub fn strip(headers: &mut HeaderMap) {
    let owned: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_name(name.as_str()))
        .cloned()
        .collect();
    for name in owned {
        headers.remove(name);
    }
}

/// Which identity value cannot travel as a header, and why; `None` when all can.
///
/// A header carries visible ASCII and inner spaces faithfully; anything else is cut,
/// trimmed, rejected or re-read by some server between keygate and the application
/// (header parsers trim whitespace, CR/LF would end the header), and a comma inside one
/// element would split a list. The token is then refused rather than its identity sent
/// altered or left out.
pub fn unfaithful(user: &AuthUser) -> Option<Rejection> {
    // Checked on every allowed request: no allocation unless something is wrong.
    let check = |what: &'static str, value: &str, element: bool| {
        problem(value, element).map(|problem| {
            Rejection::new(
                AuthError::MalformedToken,
                format!("{what} {problem}, so it cannot be sent as an identity header"),
            )
        })
    };
    check("the user id", user.user_id(), false)
        .or_else(|| {
            user.session_id()
                .and_then(|sid| check("the session id (sid)", sid, false))
        })
        .or_else(|| {
            let org = user.org()?;
            check("the org id", &org.id, false)
                .or_else(|| {
                    org.role
                        .as_deref()
                        .and_then(|role| check("the org role", role, false))
                })
                .or_else(|| {
                    org.permissions
                        .iter()
                        .find_map(|permission| check("an org permission", permission, true))
                })
        })
        // Plans and features travel as their claims, comma-separated lists already.
        .or_else(|| {
            user.plan()
                .and_then(|plans| check("the plans (pla)", plans, false))
        })
        .or_else(|| {
            user.features()
                .and_then(|features| check("the features (fea)", features, false))
        })
}

/// What keeps `value` from being a faithful header value (or list element).
fn problem(value: &str, element: bool) -> Option<&'static str> {
    let bytes = value.as_bytes();
    let (mut control, mut outside, mut comma) = (false, false, false);
    for &b in bytes {
        control |= b.is_ascii_control();
        outside |= b > b'~';
        comma |= b == b',';
    }
    if control {
        Some("holds a control character")
    } else if outside {
        Some("holds a character outside visible ASCII")
    } else if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        Some("has leading or trailing whitespace")
    } else if element && comma {
        Some("holds a comma inside one element of a list")
    } else {
        None
    }
}

const USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
const ORG_ID: HeaderName = HeaderName::from_static("x-auth-org-id");
const ORG_ROLE: HeaderName = HeaderName::from_static("x-auth-org-role");
const ORG_PERMISSIONS: HeaderName = HeaderName::from_static("x-auth-org-permissions");
const TOKEN_TYPE: HeaderName = HeaderName::from_static("x-auth-token-type");
const PLAN: HeaderName = HeaderName::from_static("x-auth-plan");
const FEATURES: HeaderName = HeaderName::from_static("x-auth-features");
const CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");

/// The identity headers of a verified caller: `X-Auth-User-Id`, and when present
/// `X-Auth-Session-Id`, `X-Auth-Org-Id`, `X-Auth-Org-Role`, `X-Auth-Org-Permissions`,
/// `X-Auth-Token-Type`, `X-Auth-Plan` and `X-Auth-Features` (the `pla` and `fea` claims
/// as they are: comma-separated scoped entries such as `u:free,o:pro`), and
/// `X-Auth-Claims` (the claims as base64url JSON) when asked for.
pub fn headers(user: &AuthUser, forward_claims: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(9);
    // The values were checked by `unfaithful` when the request was decided, so none is
    // refused here; one that were would be left out, never mangled.
    let mut push = |name: HeaderName, value: &str| {
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
    if let Some(plans) = user.plan() {
        push(PLAN, plans);
    }
    if let Some(features) = user.features() {
        push(FEATURES, features);
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
            ("x_auth_user_id", "evil3"),
            ("X_Auth-Org_Id", "evil4"),
            ("x-authorization-hint", "kept: not the x-auth- prefix"),
            ("x_authorization", "kept: not the x-auth- prefix either"),
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
        assert!(names.contains(&"x_authorization"));
        assert!(!names.iter().any(|n| is_identity_name(n)), "{names:?}");
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[test]
    fn routing_overrides_in_any_spelling() {
        for name in [
            "x-original-url",
            "x_original_url",
            "x-rewrite-url",
            "x-http-method-override",
            "x_http_method",
            "x-method-override",
        ] {
            assert!(is_routing_override(name), "{name}");
        }
        for name in [
            "x-original-uri",
            "x-original-url-2",
            "x-http",
            "x-forwarded-uri",
        ] {
            assert!(!is_routing_override(name), "{name}");
        }
    }

    #[test]
    fn values_a_header_cannot_carry_faithfully() {
        for (value, element) in [
            ("user_1", false),
            ("a b", false),
            ("org:billing:read", true),
            ("x,y", false),
        ] {
            assert_eq!(problem(value, element), None, "{value:?}");
        }
        for (value, element, expected) in [
            (
                "a\r\nX-Auth-Org-Role: org:admin",
                false,
                "holds a control character",
            ),
            ("a\0b", false, "holds a control character"),
            ("a\tb", false, "holds a control character"),
            ("a\u{7f}", false, "holds a control character"),
            (" user_victim ", false, "has leading or trailing whitespace"),
            ("user ", false, "has leading or trailing whitespace"),
            (
                "caf\u{e9}",
                false,
                "holds a character outside visible ASCII",
            ),
            (
                "org:a,org:b",
                true,
                "holds a comma inside one element of a list",
            ),
        ] {
            assert_eq!(problem(value, element), Some(expected), "{value:?}");
        }
    }
}
