//! Where a request's token comes from: `Authorization: Bearer` (any case) first, else
//! the session cookie — read as Clerk's SDK reads its cookies when a publishable key is
//! known.
//!
//! Clerk names its cookies per instance: `__session_<suffix>` and
//! `__client_uat_<suffix>`, the suffix being the first 8 characters of the base64url
//! SHA-1 of the publishable key, with the unsuffixed names as the fallback.
//! `__client_uat` is the time of the client's last sign-in or sign-out: a cookie token
//! counts only while it is present and not `0` (else the user signed out), and only
//! when the token was issued at or after it (else it is outdated).

use std::borrow::Cow;

use actix_web::HttpRequest;
use actix_web::http::header;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::AuthError;

/// The token of a request, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'a> {
    /// From `Authorization: Bearer`.
    Header(&'a str),
    /// From the session cookie.
    Cookie {
        /// The token.
        token: String,
        /// `__client_uat` when Clerk's cookie rules apply (`None`: they do not).
        client_uat: Option<i64>,
    },
}

/// Clerk's cookie names of one instance.
#[derive(Debug, Clone)]
struct ClerkCookies {
    session_suffixed: String,
    client_uat_suffixed: String,
}

/// Which sources are read, fixed at start.
#[derive(Debug, Clone)]
pub struct TokenSources {
    cookie_name: Option<String>,
    clerk: Option<ClerkCookies>,
}

/// The cookie that holds Clerk's client sign-in time.
pub const CLIENT_UAT: &str = "__client_uat";

/// The suffix of Clerk's cookie names for `publishable_key`.
pub fn cookie_suffix(publishable_key: &str) -> String {
    let digest = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        publishable_key.as_bytes(),
    );
    STANDARD
        .encode(digest.as_ref())
        .replace('+', "-")
        .replace('/', "_")
        .chars()
        .take(8)
        .collect()
}

impl TokenSources {
    /// The header, then the cookie named `cookie_name` (`None`: no cookie), with Clerk's
    /// names and `__client_uat` rule when its publishable key is known.
    pub fn new(cookie_name: Option<String>, publishable_key: Option<&str>) -> TokenSources {
        let clerk = match (&cookie_name, publishable_key) {
            (Some(name), Some(pk)) => {
                let suffix = cookie_suffix(pk);
                Some(ClerkCookies {
                    session_suffixed: format!("{name}_{suffix}"),
                    client_uat_suffixed: format!("{CLIENT_UAT}_{suffix}"),
                })
            }
            _ => None,
        };
        TokenSources { cookie_name, clerk }
    }

    /// Whether `req` carries a Clerk session cookie but no active client: a signed-out
    /// browser (for the explanation of its `missing_token`).
    pub fn signed_out(&self, req: &HttpRequest) -> bool {
        match (&self.clerk, &self.cookie_name) {
            (Some(clerk), Some(name)) => {
                req.cookie(&clerk.session_suffixed).is_some() || req.cookie(name).is_some()
            }
            _ => false,
        }
    }

    /// Why `req` has no token, for the explanation of its `missing_token`: a
    /// signed-out Clerk browser, an `Authorization` header without the `Bearer`
    /// scheme, or nothing at all.
    pub fn why_missing(&self, req: &HttpRequest) -> Cow<'static, str> {
        if self.signed_out(req) {
            return Cow::Borrowed(
                "a session cookie without an active client (__client_uat missing or 0): signed out",
            );
        }
        let authorization = req.headers().get(header::AUTHORIZATION);
        match authorization.map(|value| String::from_utf8_lossy(value.as_bytes())) {
            Some(value) => match without_bearer(&value) {
                Some(problem) if self.cookie_name.is_some() => {
                    Cow::Owned(format!("{problem}, and there is no session cookie"))
                }
                Some(problem) => Cow::Owned(problem),
                None => Cow::Borrowed(NO_TOKEN),
            },
            None => Cow::Borrowed(NO_TOKEN),
        }
    }

    /// The token of `req`, or [`AuthError::MissingToken`].
    pub fn find<'r>(&self, req: &'r HttpRequest) -> Result<Found<'r>, AuthError> {
        // from_utf8 rather than HeaderValue::to_str: the same safety (the token is validated
        // as base64url before any use) at a fraction of the per-byte cost on the hot path.
        if let Some(value) = req.headers().get(header::AUTHORIZATION)
            && let Some(token) = std::str::from_utf8(value.as_bytes()).ok().and_then(bearer)
        {
            return Ok(Found::Header(token));
        }
        let Some(name) = &self.cookie_name else {
            return Err(AuthError::MissingToken);
        };
        let cookie = |name: &str| {
            req.cookie(name)
                .map(|c| c.value().trim().to_string())
                .filter(|v| !v.is_empty())
        };
        match &self.clerk {
            None => cookie(name)
                .map(|token| Found::Cookie {
                    token,
                    client_uat: None,
                })
                .ok_or(AuthError::MissingToken),
            Some(clerk) => {
                let token = cookie(&clerk.session_suffixed)
                    .or_else(|| cookie(name))
                    .ok_or(AuthError::MissingToken)?;
                let client_uat = cookie(&clerk.client_uat_suffixed)
                    .or_else(|| cookie(CLIENT_UAT))
                    .map_or(0, |v| leading_integer(&v));
                // No active client: the user signed out, whatever session cookie remains.
                if client_uat == 0 {
                    return Err(AuthError::MissingToken);
                }
                Ok(Found::Cookie {
                    token,
                    client_uat: Some(client_uat),
                })
            }
        }
    }
}

/// The integer a value starts with, as JavaScript's `parseInt` reads it (0 for none).
fn leading_integer(value: &str) -> i64 {
    let value = value.trim();
    let digits_from = usize::from(value.starts_with(['+', '-']));
    let end = value[digits_from..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(value.len(), |i| i + digits_from);
    value[..end].parse().unwrap_or(0)
}

/// The explanation of a request with neither source.
pub const NO_TOKEN: &str = "no Bearer token in Authorization and no session cookie";

/// Why the `Authorization` value `value` holds no Bearer token, or `None` when it
/// does. Never quotes the token: only a scheme name, which is not a secret.
pub fn without_bearer(value: &str) -> Option<String> {
    if bearer(value).is_some() {
        return None;
    }
    let value = value.trim();
    let advice = "send `Authorization: Bearer <token>`";
    Some(match value.split_once(char::is_whitespace) {
        _ if value.is_empty() => "the Authorization header is empty".to_string(),
        None if value.eq_ignore_ascii_case("bearer") => {
            "the Authorization header's Bearer scheme has no token".to_string()
        }
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => {
            "the Authorization header's Bearer scheme has no token".to_string()
        }
        Some((scheme, _))
            if scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(
                "the Authorization header has no Bearer scheme (its scheme is {scheme:?}); {advice}"
            )
        }
        None if value.matches('.').count() == 2 => {
            format!(
                "the Authorization header has no Bearer scheme: it holds a bare token; {advice}"
            )
        }
        _ => format!("the Authorization header has no Bearer scheme; {advice}"),
    })
}

/// The credentials of a `Bearer` authorization value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use actix_web::cookie::Cookie;
    use actix_web::test::TestRequest;

    fn sources(cookie: Option<&str>) -> TokenSources {
        TokenSources::new(cookie.map(String::from), None)
    }

    #[test]
    fn a_value_without_bearer_is_explained_without_its_token() {
        assert_eq!(without_bearer("Bearer a.b.c"), None);
        let bare = without_bearer("eyJh.eyJz.c2ln").unwrap();
        assert!(
            bare.contains("no Bearer scheme: it holds a bare token"),
            "{bare}"
        );
        assert!(!bare.contains("eyJ"), "{bare}");
        let basic = without_bearer("Basic dXNlcjpwdw==").unwrap();
        assert!(basic.contains("(its scheme is \"Basic\")"), "{basic}");
        assert!(!basic.contains("dXNl"), "{basic}");
        assert_eq!(
            without_bearer("Bearer ").unwrap(),
            "the Authorization header's Bearer scheme has no token"
        );
        let req = TestRequest::default()
            .insert_header(("Authorization", "eyJh.eyJz.c2ln"))
            .to_http_request();
        assert_eq!(
            sources(Some("__session")).find(&req),
            Err(AuthError::MissingToken)
        );
        let why = sources(Some("__session")).why_missing(&req);
        assert!(why.ends_with("and there is no session cookie"), "{why}");
        let none = TestRequest::default().to_http_request();
        assert_eq!(sources(None).why_missing(&none), NO_TOKEN);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_wins_over_the_cookie() {
        let req = TestRequest::default()
            .insert_header(("Authorization", "bEaReR abc.def.ghi"))
            .cookie(Cookie::new("__session", "cookie.token.x"))
            .to_http_request();
        assert_eq!(
            sources(Some("__session")).find(&req).unwrap(),
            Found::Header("abc.def.ghi")
        );
    }

    #[test]
    fn cookie_is_the_fallback_and_can_be_disabled() {
        let req = TestRequest::default()
            .insert_header(("Authorization", "Basic dXNlcjpwdw=="))
            .cookie(Cookie::new("__session", "cookie.token.x"))
            .to_http_request();
        assert_eq!(
            sources(Some("__session")).find(&req).unwrap(),
            Found::Cookie {
                token: "cookie.token.x".into(),
                client_uat: None
            }
        );
        assert_eq!(sources(None).find(&req), Err(AuthError::MissingToken));
        let bare = TestRequest::default()
            .insert_header(("Authorization", "Bearer "))
            .to_http_request();
        assert_eq!(
            sources(Some("__session")).find(&bare),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn the_suffix_is_clerks() {
        // Computed by @clerk/shared's getCookieSuffix for this key.
        assert_eq!(
            cookie_suffix("pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"),
            "naoXFJnI"
        );
    }

    #[test]
    fn clerk_cookies_suffixed_first_and_client_uat_required() {
        let pk = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k";
        let clerk = TokenSources::new(Some("__session".into()), Some(pk));
        let find = |cookies: &[(&str, &str)]| {
            let mut req = TestRequest::default();
            for (name, value) in cookies {
                req = req.cookie(Cookie::new(name.to_string(), value.to_string()));
            }
            match clerk.find(&req.to_http_request()) {
                Ok(Found::Cookie { token, client_uat }) => Ok((token, client_uat)),
                Ok(Found::Header(_)) => panic!("no header was sent"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(
            find(&[
                ("__session", "plain"),
                ("__session_naoXFJnI", "suffixed"),
                ("__client_uat", "5"),
                ("__client_uat_naoXFJnI", "100"),
            ]),
            Ok(("suffixed".to_string(), Some(100)))
        );
        assert_eq!(
            find(&[("__session", "plain"), ("__client_uat", "7abc")]),
            Ok(("plain".to_string(), Some(7)))
        );
        for signed_out in [
            &[("__session", "plain")][..],
            &[("__session", "plain"), ("__client_uat", "0")],
            &[("__session", "plain"), ("__client_uat", "abc")],
            &[
                ("__session", "plain"),
                ("__client_uat_naoXFJnI", "0"),
                ("__client_uat", "9"),
            ],
        ] {
            assert_eq!(
                find(signed_out),
                Err(AuthError::MissingToken),
                "{signed_out:?}"
            );
        }
    }

    #[test]
    fn leading_integers_as_parse_int() {
        assert_eq!(leading_integer("1700000000"), 1_700_000_000);
        assert_eq!(leading_integer("12abc"), 12);
        assert_eq!(leading_integer("-5"), -5);
        assert_eq!(leading_integer("abc"), 0);
        assert_eq!(leading_integer(""), 0);
    }
}
