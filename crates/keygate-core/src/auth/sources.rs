//! Where a request's token comes from: `Authorization: Bearer` (any case) first, else
//! the session cookie.

use std::borrow::Cow;

use actix_web::HttpRequest;
use actix_web::http::header;

use super::AuthError;

/// The token of a request, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'a> {
    /// From `Authorization: Bearer`.
    Header(&'a str),
    /// From the session cookie.
    Cookie(String),
}

/// Which sources are read, fixed at start.
#[derive(Debug, Clone)]
pub struct TokenSources {
    cookie_name: Option<Cow<'static, str>>,
}

impl TokenSources {
    /// The header, then the cookie named `cookie_name` (`None`: no cookie).
    pub fn new(cookie_name: Option<String>) -> TokenSources {
        TokenSources {
            cookie_name: cookie_name.map(Cow::Owned),
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
        if let Some(name) = &self.cookie_name
            && let Some(cookie) = req.cookie(name)
        {
            let token = cookie.value().trim();
            if !token.is_empty() {
                return Ok(Found::Cookie(token.to_string()));
            }
        }
        Err(AuthError::MissingToken)
    }
}

/// The credentials of a `Bearer` authorization value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn sources(cookie: Option<&str>) -> TokenSources {
        TokenSources::new(cookie.map(String::from))
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_wins_over_the_cookie() {
        let req = TestRequest::default()
            .insert_header(("Authorization", "bEaReR abc.def.ghi"))
            .cookie(actix_web::cookie::Cookie::new(
                "__session",
                "cookie.token.x",
            ))
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
            .cookie(actix_web::cookie::Cookie::new(
                "__session",
                "cookie.token.x",
            ))
            .to_http_request();
        assert_eq!(
            sources(Some("__session")).find(&req).unwrap(),
            Found::Cookie("cookie.token.x".into())
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
}
