//! Readers for the values of configuration: secrets, Clerk keys, algorithm lists, URLs.
//! They say what is wrong without repeating a secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;

/// The shortest shared secret accepted (RFC 8725 §3.5: enough entropy for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

/// The example secret of `.env.example`: copied as is, it would let anyone mint tokens.
pub const PLACEHOLDER_SECRET: &str = "change-me-to-a-long-random-secret-of-32-bytes-or-more";

/// Decodes a `JWT_SECRET` value: its UTF-8 bytes as they are, or `base64:<…>` in either
/// alphabet, padding optional.
pub fn decode_secret(raw: &str) -> Result<Vec<u8>, String> {
    match raw.strip_prefix("base64:") {
        Some(b64) => {
            decode_base64_any(b64).ok_or_else(|| "the base64: value does not decode".into())
        }
        None => Ok(raw.as_bytes().to_vec()),
    }
}

/// Checks a decoded secret: long enough and not the documentation's placeholder.
pub fn check_secret(bytes: &[u8]) -> Result<(), String> {
    if bytes == PLACEHOLDER_SECRET.as_bytes() {
        return Err(
            "is the placeholder of .env.example; generate a secret (openssl rand -base64 48)"
                .into(),
        );
    }
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "must be at least {MIN_SECRET_BYTES} bytes, got {}",
            bytes.len()
        ));
    }
    Ok(())
}

/// Base64 in the standard or URL-safe alphabet, with or without padding.
pub fn decode_base64_any(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .ok()
}

/// The Frontend API host inside a Clerk publishable key (`pk_test_`/`pk_live_` + base64
/// of `<host>$`).
pub fn parse_publishable_key(pk: &str) -> Result<String, String> {
    let encoded = pk
        .strip_prefix("pk_test_")
        .or_else(|| pk.strip_prefix("pk_live_"))
        .ok_or("expected a key starting with pk_test_ or pk_live_")?;
    let decoded =
        decode_base64_any(encoded).ok_or("the part after pk_test_/pk_live_ is not base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the decoded key is not text")?;
    let host = text
        .strip_suffix('$')
        .ok_or("the decoded key does not end with $")?;
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with('.');
    if !valid {
        return Err("the decoded key does not name a host".into());
    }
    Ok(host.to_string())
}

/// An algorithm name as in an `alg` header, in any case (`hs256` is `HS256`).
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    const NAMES: [(&str, Algorithm); 12] = [
        ("HS256", Algorithm::HS256),
        ("HS384", Algorithm::HS384),
        ("HS512", Algorithm::HS512),
        ("RS256", Algorithm::RS256),
        ("RS384", Algorithm::RS384),
        ("RS512", Algorithm::RS512),
        ("PS256", Algorithm::PS256),
        ("PS384", Algorithm::PS384),
        ("PS512", Algorithm::PS512),
        ("ES256", Algorithm::ES256),
        ("ES384", Algorithm::ES384),
        ("EdDSA", Algorithm::EdDSA),
    ];
    let name = name.trim();
    // jsonwebtoken's own parser is exact; the canonical spelling is found first.
    NAMES
        .iter()
        .find(|(canonical, _)| canonical.eq_ignore_ascii_case(name))
        .and_then(|(canonical, _)| canonical.parse().ok())
}

/// Parses a comma-separated algorithm list, without repeats, in the given order.
pub fn parse_algorithms(list: &str) -> Result<Vec<Algorithm>, String> {
    let mut algorithms = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let alg = parse_algorithm(name).ok_or_else(|| {
            format!(
                "unsupported algorithm {name:?} (HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
            )
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    if algorithms.is_empty() {
        return Err("lists no algorithm".into());
    }
    Ok(algorithms)
}

/// Checks an `http://` or `https://` URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!("expected an http:// or https:// URL, got {url:?}")),
    }
}

/// A comma-separated list, trimmed, without empty entries.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pk(host_and_dollar: &str, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::STANDARD.encode(host_and_dollar)
        )
    }

    #[test]
    fn publishable_keys() {
        assert_eq!(
            parse_publishable_key(&pk("clerk.example.com$", "pk_live_")).unwrap(),
            "clerk.example.com"
        );
        assert_eq!(
            parse_publishable_key(&pk("settled-hen-12.clerk.accounts.dev$", "pk_test_")).unwrap(),
            "settled-hen-12.clerk.accounts.dev"
        );
        assert!(parse_publishable_key("pk_test_%%%").is_err());
        assert!(
            parse_publishable_key(&pk("clerk.example.com", "pk_test_"))
                .unwrap_err()
                .contains('$')
        );
        assert!(parse_publishable_key(&pk("x$", "sk_test_")).is_err());
        assert!(parse_publishable_key(&pk("$", "pk_test_")).is_err());
        assert!(parse_publishable_key(&pk("a/b$", "pk_test_")).is_err());
    }

    #[test]
    fn algorithm_names_in_any_case() {
        assert_eq!(parse_algorithm("hs256"), Some(Algorithm::HS256));
        assert_eq!(parse_algorithm("EDDSA"), Some(Algorithm::EdDSA));
        assert_eq!(parse_algorithm("none"), None);
        assert_eq!(
            parse_algorithms("rs256, RS256,es256").unwrap(),
            vec![Algorithm::RS256, Algorithm::ES256]
        );
        assert!(parse_algorithms(" , ").is_err());
    }

    #[test]
    fn secrets_are_taken_as_they_are() {
        assert_eq!(
            decode_secret(" padded secret ").unwrap(),
            b" padded secret "
        );
        assert_eq!(decode_secret("base64:AAEC").unwrap(), vec![0, 1, 2]);
        assert!(decode_secret("base64:***").is_err());
        assert!(check_secret(PLACEHOLDER_SECRET.as_bytes()).is_err());
        assert!(check_secret(&[7; 31]).is_err());
        assert!(check_secret(&[7; 32]).is_ok());
    }
}
