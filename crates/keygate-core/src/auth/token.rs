//! The raw parsing of a compact JWS: its three parts, its JOSE header, its payload.
//!
//! Nothing here trusts the token: the header is parsed only to pick a key, and
//! `jku`, `x5u`, `jwk`, `x5c` are never read, so keys never come from the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::AuthError;
use super::error::Rejection;

/// The longest token accepted; longer ones are rejected unparsed.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `typ` values of OAuth access tokens (RFC 9068), compared case-insensitively.
pub const OAUTH_TYPES: [&str; 2] = ["at+jwt", "application/at+jwt"];

/// Whether a `typ` header is an OAuth access token's: the parser admits it beside
/// `JWT`, and classification reads it as the token's type.
pub fn is_oauth_type(typ: &str) -> bool {
    OAUTH_TYPES.iter().any(|t| t.eq_ignore_ascii_case(typ))
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
    /// The token type: `JWT`, or `at+jwt` for an OAuth access token, when present.
    #[serde(default, deserialize_with = "present_string")]
    pub typ: Option<String>,
    /// Clerk's token category.
    #[serde(default, deserialize_with = "present_string")]
    pub cat: Option<String>,
    /// Critical extensions; keygate understands none.
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A header parameter that, when present, must be a string: `null` is not absent.
fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// Splits a compact JWS and checks its header's form (not its signature).
pub fn parse(token: &str) -> Result<RawToken<'_>, Rejection> {
    let malformed = |why: &'static str| Rejection::new(AuthError::MalformedToken, why);
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed("the token is longer than 16384 characters"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    // The alphabet is checked by the strict decoders: the header here, the payload
    // and signature when they are decoded, so no part is scanned twice.
    if header.is_empty() || payload.is_empty() {
        return Err(malformed(
            "the JWT header or payload (first or second segment) is empty",
        ));
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the JWT header (first segment) is not base64url"))?;
    // serde_json does not check the UTF-8 of strings it skips; the header is JSON
    // text, so all of it must be UTF-8 (as the payload must).
    if std::str::from_utf8(&header_json).is_err() {
        return Err(malformed("the JWT header is not UTF-8"));
    }
    // serde would read a JSON array positionally into the struct; a header is an object.
    if header_json.trim_ascii_start().first() != Some(&b'{') {
        return Err(malformed("the JWT header is not a JSON object"));
    }
    let jose: JoseHeader = serde_json::from_slice(&header_json)
        .map_err(|_| malformed("the JWT header is not a JOSE header (alg, kid, typ as strings)"))?;
    if jose.crit.is_some() {
        return Err(malformed(
            "the JWT header has crit, and no extension is understood",
        ));
    }
    if jose
        .typ
        .as_deref()
        .is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT") && !is_oauth_type(typ))
    {
        return Err(malformed("the JWT header's typ is neither JWT nor at+jwt"));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(RawToken {
        signing_input,
        payload,
        signature,
        header: jose,
    })
}

/// The signature's bytes, in `buf`; `None` when it is not base64url or longer than
/// any supported signature.
pub fn decode_signature<'b>(signature: &str, buf: &'b mut [u8; 1024]) -> Option<&'b [u8]> {
    let len = URL_SAFE_NO_PAD.decode_slice(signature, buf).ok()?;
    buf.get(..len)
}

/// Decodes the payload into its JSON text (UTF-8, as RFC 7519 requires).
pub fn decode_payload(payload: &str) -> Result<String, Rejection> {
    let malformed = |why: &'static str| Rejection::new(AuthError::MalformedToken, why);
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("the JWT payload (second segment) is not base64url"))?;
    String::from_utf8(bytes).map_err(|_| malformed("the JWT payload is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn parse_checks_shape_and_header() {
        let payload = b64("{}");
        let ok = format!(
            "{}.{payload}.sig",
            b64(r#"{"alg":"RS256","typ":"jwt","kid":"k"}"#)
        );
        assert_eq!(parse(&ok).unwrap().header.kid.as_deref(), Some("k"));
        let oauth = format!("{}.{payload}.sig", b64(r#"{"alg":"RS256","typ":"at+jwt"}"#));
        assert_eq!(parse(&oauth).unwrap().header.typ.as_deref(), Some("at+jwt"));
        for header in [
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","typ":"dpop+jwt"}"#,
            r#"{"alg":"RS256","typ":5}"#,
            r#"{"typ":"JWT"}"#,
            r#"["alg"]"#,
            r#"{"alg":"RS256","typ":null}"#,
            r#"{"alg":"RS256","cat":null}"#,
        ] {
            assert_eq!(
                parse(&format!("{}.{payload}.sig", b64(header)))
                    .unwrap_err()
                    .error,
                AuthError::MalformedToken,
                "{header}"
            );
        }
        // Invalid UTF-8 in a parameter keygate does not read is still not JSON text.
        let mut bad = br#"{"alg":"RS256","x":""#.to_vec();
        bad.extend([0xff, b'"', b'}']);
        assert_eq!(
            parse(&format!("{}.{payload}.sig", URL_SAFE_NO_PAD.encode(&bad)))
                .unwrap_err()
                .error,
            AuthError::MalformedToken
        );
        for token in [
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c+",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                parse(token).unwrap_err().error,
                AuthError::MalformedToken,
                "{token:.40}"
            );
        }
    }

    #[test]
    fn payload_must_be_base64url_utf8() {
        assert_eq!(
            decode_payload(&b64(r#"{"sub":"u"}"#)).unwrap(),
            r#"{"sub":"u"}"#
        );
        assert_eq!(
            decode_payload(&URL_SAFE_NO_PAD.encode([0xff, 0xfe]))
                .unwrap_err()
                .error,
            AuthError::MalformedToken
        );
        assert_eq!(
            decode_payload("a+b").unwrap_err().error,
            AuthError::MalformedToken
        );
    }
}
