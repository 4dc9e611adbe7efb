//! What kind of token a JWT (or an opaque string) is, as Clerk's backend SDK tells them
//! apart, decided before any signature is checked.
//!
//! - an opaque `mt_…` / `oat_…` / `ak_…` string: an M2M token, an OAuth access token or
//!   an API key, verified through Clerk's Backend API;
//! - a JWT whose `sub` starts with `mch_` and whose `cat` is absent or the M2M category:
//!   an M2M token (Clerk checks this first);
//! - a JWT typed `at+jwt` / `application/at+jwt`: an OAuth access token;
//! - any other JWT: a session token, if its category (`cat`) is a session one — absent,
//!   `cl_B7d4PD111AAA` or `cl_I7d4PD111III` — or the JWT-template one when templates
//!   are accepted. Any other category is refused as `token_type_not_accepted`.

use super::AuthError;
use super::claims::Claims;
use super::error::Rejection;
use super::token::{JoseHeader, is_oauth_type};
use super::token_type::TokenType;

/// Clerk's categories of session tokens.
pub const SESSION_CATEGORIES: [&str; 2] = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"];
/// Clerk's category of JWT-template tokens.
pub const TEMPLATE_CATEGORY: &str = "cl_B7d4PD222AAA";
/// Clerk's category of machine-to-machine JWTs.
pub const M2M_CATEGORY: &str = "cl_B7d4PD333AAA";
/// The `sub` prefix of Clerk machines.
pub const MACHINE_SUBJECT_PREFIX: &str = "mch_";

/// The kinds of opaque machine token, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opaque {
    /// `mt_…`
    M2m,
    /// `oat_…`
    OAuth,
    /// `ak_…`
    ApiKey,
}

impl Opaque {
    /// The opaque kind of `token`: one of the prefixes, and not shaped like a JWT.
    pub fn of(token: &str) -> Option<Opaque> {
        let kind = if token.starts_with("mt_") {
            Opaque::M2m
        } else if token.starts_with("oat_") {
            Opaque::OAuth
        } else if token.starts_with("ak_") {
            Opaque::ApiKey
        } else {
            return None;
        };
        // A JWT that merely starts with a prefix is still a JWT. Counted only after a
        // prefix matched: a session token never pays for the scan.
        (token.bytes().filter(|b| *b == b'.').count() != 2).then_some(kind)
    }

    /// The token type it is.
    pub fn token_type(self) -> TokenType {
        match self {
            Opaque::M2m => TokenType::M2mToken,
            Opaque::OAuth => TokenType::OauthToken,
            Opaque::ApiKey => TokenType::ApiKey,
        }
    }
}

/// The token type of a JWT, from its (unverified) header and payload.
pub fn classify(
    header: &JoseHeader,
    claims: &Claims,
    accept_templates: bool,
) -> Result<TokenType, Rejection> {
    let cat = header.cat.as_deref();
    if claims
        .sub()
        .is_some_and(|sub| sub.starts_with(MACHINE_SUBJECT_PREFIX))
    {
        return match cat {
            None | Some(M2M_CATEGORY) => Ok(TokenType::M2mToken),
            Some(other) => Err(not_accepted(format!(
                "a machine token (sub mch_…) with category {other:?}, not {M2M_CATEGORY}"
            ))),
        };
    }
    if header.typ.as_deref().is_some_and(is_oauth_type) {
        return Ok(TokenType::OauthToken);
    }
    match cat {
        None => Ok(TokenType::SessionToken),
        Some(cat) if SESSION_CATEGORIES.contains(&cat) => Ok(TokenType::SessionToken),
        Some(TEMPLATE_CATEGORY) if accept_templates => Ok(TokenType::SessionToken),
        Some(TEMPLATE_CATEGORY) => Err(not_accepted(format!(
            "a JWT-template token (cat {TEMPLATE_CATEGORY}) and JWT_ACCEPT_TEMPLATES is false"
        ))),
        Some(M2M_CATEGORY) => Err(not_accepted(format!(
            "a machine token category ({M2M_CATEGORY}) without a mch_ subject"
        ))),
        Some(other) => Err(not_accepted(format!(
            "an unknown token category {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

fn not_accepted(reason: String) -> Rejection {
    Rejection::new(AuthError::TokenTypeNotAccepted, reason)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(typ: Option<&str>, cat: Option<&str>) -> JoseHeader {
        let mut header = json!({"alg": "RS256"});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        if let Some(cat) = cat {
            header["cat"] = json!(cat);
        }
        serde_json::from_value(header).unwrap()
    }

    fn claims(sub: &str) -> Claims {
        Claims::parse(json!({"sub": sub}).to_string(), "sub").unwrap()
    }

    fn kind(
        typ: Option<&str>,
        cat: Option<&str>,
        sub: &str,
        templates: bool,
    ) -> Result<TokenType, AuthError> {
        classify(&header(typ, cat), &claims(sub), templates).map_err(|r| r.error)
    }

    #[test]
    fn categories_and_types_as_clerk_tells_them() {
        use TokenType::*;
        let refused = Err(AuthError::TokenTypeNotAccepted);
        assert_eq!(kind(None, None, "user_1", false), Ok(SessionToken));
        assert_eq!(
            kind(Some("JWT"), Some("cl_B7d4PD111AAA"), "user_1", false),
            Ok(SessionToken)
        );
        assert_eq!(
            kind(None, Some("cl_I7d4PD111III"), "user_1", false),
            Ok(SessionToken)
        );
        assert_eq!(
            kind(None, Some("cl_B7d4PD222AAA"), "user_1", false),
            refused
        );
        assert_eq!(
            kind(None, Some("cl_B7d4PD222AAA"), "user_1", true),
            Ok(SessionToken)
        );
        assert_eq!(
            kind(None, Some("cl_B7d4PD333AAA"), "user_1", false),
            refused
        );
        assert_eq!(kind(None, Some("junk"), "user_1", true), refused);
        assert_eq!(kind(None, None, "mch_1", false), Ok(M2mToken));
        assert_eq!(
            kind(None, Some("cl_B7d4PD333AAA"), "mch_1", false),
            Ok(M2mToken)
        );
        assert_eq!(kind(None, Some("cl_B7d4PD111AAA"), "mch_1", false), refused);
        assert_eq!(kind(Some("at+jwt"), None, "user_1", false), Ok(OauthToken));
        assert_eq!(
            kind(Some("Application/AT+JWT"), Some("x"), "user_1", false),
            Ok(OauthToken)
        );
    }

    #[test]
    fn opaque_tokens_by_prefix_unless_shaped_like_a_jwt() {
        assert_eq!(Opaque::of("mt_abc"), Some(Opaque::M2m));
        assert_eq!(Opaque::of("oat_abc"), Some(Opaque::OAuth));
        assert_eq!(Opaque::of("ak_abc"), Some(Opaque::ApiKey));
        assert_eq!(Opaque::of("mt_a.b.c"), None);
        assert_eq!(Opaque::of("eyJ.x.y"), None);
        assert_eq!(Opaque::of("sk_abc"), None);
    }
}
