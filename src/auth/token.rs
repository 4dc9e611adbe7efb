//! Where a token comes from (header, then cookie) and the raw parsing of its three parts.
//!
//! Nothing here trusts the token: the header is parsed only to pick a key, and
//! `jku`, `x5u`, `jwk`, `x5c` are never read, so keys never come from the token.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::AuthError;

/// The longest token accepted; longer ones are rejected unparsed.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Clerk's machine-token category, never accepted on session routes.
pub const CLERK_MACHINE_TOKEN_CATEGORY: &str = "cl_B7d4PD333AAA";

/// The token of a request: `Authorization: Bearer` (any case), else the named cookie.
pub fn extract(req: &HttpRequest, cookie_name: Option<&str>) -> Result<String, AuthError> {
    // from_utf8 rather than HeaderValue::to_str: the same safety (the token is validated
    // as base64url before any use) at a fraction of the per-byte cost on the hot path.
    if let Some(value) = req.headers().get(header::AUTHORIZATION)
        && let Some(token) = std::str::from_utf8(value.as_bytes()).ok().and_then(bearer)
    {
        return Ok(token.to_string());
    }
    if let Some(name) = cookie_name
        && let Some(cookie) = req.cookie(name)
    {
        let token = cookie.value().trim();
        if !token.is_empty() {
            return Ok(token.to_string());
        }
    }
    Err(AuthError::MissingToken)
}

/// The credentials of a `Bearer` authorization value, if it is one.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token split into its parts, not yet verified.
#[derive(Debug)]
pub struct RawToken<'a> {
    /// `base64(header) . base64(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The base64url payload.
    pub payload: &'a str,
    /// The base64url signature.
    pub signature: &'a str,
    /// The decoded JOSE header.
    pub header: JoseHeader,
}

/// The JOSE header fields keygate looks at. Unknown fields, including `jku`, `x5u`,
/// `jwk` and `x5c`, are deliberately not deserialized.
#[derive(Debug, Deserialize)]
pub struct JoseHeader {
    /// The signature algorithm, as written.
    pub alg: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The token type; must be `JWT` when present.
    #[serde(default)]
    pub typ: Option<String>,
    /// Clerk's token category.
    #[serde(default)]
    pub cat: Option<String>,
    /// Critical extensions; keygate understands none.
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// Splits a compact JWS and checks its header's form (not its signature).
pub fn parse(token: &str) -> Result<RawToken<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken);
    };
    if header.is_empty()
        || payload.is_empty()
        || ![header, payload, signature].iter().all(|p| is_base64url(p))
    {
        return Err(AuthError::MalformedToken);
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::MalformedToken)?;
    // serde would read a JSON array positionally into the struct; a header is an object.
    if header_json.trim_ascii_start().first() != Some(&b'{') {
        return Err(AuthError::MalformedToken);
    }
    let jose: JoseHeader =
        serde_json::from_slice(&header_json).map_err(|_| AuthError::MalformedToken)?;
    if jose.crit.is_some() {
        return Err(AuthError::MalformedToken);
    }
    if jose
        .typ
        .as_deref()
        .is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT"))
    {
        return Err(AuthError::MalformedToken);
    }
    if jose.cat.as_deref() == Some(CLERK_MACHINE_TOKEN_CATEGORY) {
        return Err(AuthError::MalformedToken);
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(RawToken {
        signing_input,
        payload,
        signature,
        header: jose,
    })
}

fn is_base64url(part: &str) -> bool {
    part.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Decodes the payload into a JSON object.
pub fn decode_payload(
    payload: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken)?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(AuthError::MalformedToken),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
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
        assert_eq!(extract(&req, Some("__session")).unwrap(), "abc.def.ghi");
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
        assert_eq!(extract(&req, Some("__session")).unwrap(), "cookie.token.x");
        assert_eq!(extract(&req, None), Err(AuthError::MissingToken));
        let bare = TestRequest::default()
            .insert_header(("Authorization", "Bearer "))
            .to_http_request();
        assert_eq!(
            extract(&bare, Some("__session")),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn parse_checks_shape_and_header() {
        let payload = b64("{}");
        let ok = format!(
            "{}.{payload}.sig",
            b64(r#"{"alg":"RS256","typ":"jwt","kid":"k"}"#)
        );
        assert_eq!(parse(&ok).unwrap().header.kid.as_deref(), Some("k"));
        for header in [
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","typ":"at+jwt"}"#,
            r#"{"alg":"RS256","cat":"cl_B7d4PD333AAA"}"#,
            r#"{"typ":"JWT"}"#,
            r#"["alg"]"#,
        ] {
            assert_eq!(
                parse(&format!("{}.{payload}.sig", b64(header))).unwrap_err(),
                AuthError::MalformedToken
            );
        }
        for token in [
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c+",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                parse(token).unwrap_err(),
                AuthError::MalformedToken,
                "{token:.40}"
            );
        }
    }

    #[test]
    fn payload_must_be_a_json_object() {
        assert!(decode_payload(&b64(r#"{"sub":"u"}"#)).is_ok());
        assert_eq!(decode_payload(&b64("[1]")), Err(AuthError::MalformedToken));
        assert_eq!(
            decode_payload(&b64("not json")),
            Err(AuthError::MalformedToken)
        );
    }
}
