//! JWKS documents → usable verification keys, built with jsonwebtoken's JWK support.
//!
//! One bad entry never spoils the set: keys that are not for signatures, of an
//! unsupported type or curve, or that do not parse are skipped with a warning.
//! Symmetric (`oct`) keys are always skipped: a shared secret never comes from a URL.

use std::collections::HashMap;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::key::{KeyKind, PublicKey};

/// Why a JWKS document as a whole was refused (the last good keys stay in use).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object.
    #[error("not a JWKS document: not a JSON object")]
    NotAnObject,
    /// JSON, but not an object with a `keys` array.
    #[error("not a JWKS document: {0}")]
    Malformed(#[source] serde_json::Error),
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document into `(kid, key)` pairs usable with `allowed`, skipping
/// (with a warning) every entry that cannot verify a token: not for signatures, of an
/// unsupported type or curve, unparseable, fitting no allowed algorithm, or sharing its
/// `kid` with another entry (which of the two is meant cannot be told, so neither is kept).
pub fn parse(
    body: &[u8],
    allowed: &[Algorithm],
) -> Result<Vec<(Option<String>, PublicKey)>, JwksError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(JwksError::NotAnObject);
    }
    let doc: Document = serde_json::from_slice(body).map_err(JwksError::Malformed)?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    let mut kid_count: HashMap<String, usize> = HashMap::new();
    for (index, raw) in doc.keys.into_iter().enumerate() {
        // Counted before parsing: a usable and an unusable entry under one kid are still ambiguous.
        if let Some(kid) = raw.get("kid").and_then(serde_json::Value::as_str) {
            *kid_count.entry(kid.to_string()).or_default() += 1;
        }
        match parse_key(raw, allowed) {
            Ok(entry) => keys.push(entry),
            Err(reason) => tracing::warn!("JWKS key #{index} skipped: {reason}"),
        }
    }
    keys.retain(|(kid, _)| match kid {
        Some(kid) if kid_count.get(kid).is_some_and(|n| *n > 1) => {
            tracing::warn!("JWKS kid {kid:?} appears more than once: none of its keys is used");
            false
        }
        _ => true,
    });
    Ok(keys)
}

fn parse_key(
    raw: serde_json::Value,
    allowed: &[Algorithm],
) -> Result<(Option<String>, PublicKey), String> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("unreadable JWK: {e}"))?;
    let kid = jwk.common.key_id.clone();
    let label = kid.as_deref().unwrap_or("<no kid>");
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(format!("kid {label}: use {other:?} is not sig")),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err(format!("kid {label}: key_ops does not include verify"));
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            ref curve => return Err(format!("kid {label}: unsupported curve {curve:?}")),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            KeyKind::Ed25519
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            return Err(format!("kid {label}: unsupported curve {:?}", okp.curve));
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(format!(
                "kid {label}: symmetric keys are never taken from a JWKS"
            ));
        }
        _ => return Err(format!("kid {label}: unsupported key type")),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(key_alg) => {
            let alg = to_algorithm(key_alg).ok_or_else(|| {
                format!("kid {label}: alg {key_alg} is not a signature algorithm")
            })?;
            if !kind.allows(alg) {
                return Err(format!(
                    "kid {label}: alg {key_alg} does not fit a {} key",
                    kind.name()
                ));
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("kid {label}: {e}"))?;
    let key = PublicKey::new(&key, kind, alg, allowed).map_err(|e| format!("kid {label}: {e}"))?;
    Ok((kid, key))
}

fn to_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    match alg {
        KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512 => None,
        other => Algorithm::try_from(other).ok(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    // RFC 7515 A.2's RSA key (2048 bits) and RFC 7515 A.3's P-256 key.
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn rsa(kid: &str) -> serde_json::Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": RSA_N, "e": "AQAB"})
    }

    const ALL: &[Algorithm] = &[
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    fn parse(body: &[u8]) -> Result<Vec<(Option<String>, PublicKey)>, JwksError> {
        super::parse(body, ALL)
    }

    fn doc(keys: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn parses_rsa_ec_and_okp_keys() {
        let keys = parse(&doc(json!([
            rsa("r1"),
            {"kty": "EC", "kid": "e1", "crv": "P-256", "x": EC_X, "y": EC_Y},
            {"kty": "OKP", "kid": "o1", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ])))
        .unwrap();
        let kinds: Vec<_> = keys
            .iter()
            .map(|(k, p)| (k.clone().unwrap(), p.kind(), p.own_alg()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("r1".into(), KeyKind::Rsa, Some(Algorithm::RS256)),
                ("e1".into(), KeyKind::EcP256, None),
                ("o1".into(), KeyKind::Ed25519, None),
            ]
        );
    }

    #[test]
    fn skips_unusable_keys_and_keeps_the_rest() {
        let keys = parse(&doc(json!([
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": EC_X, "y": EC_Y},
            {"kty": "RSA", "kid": "wrong-alg", "alg": "ES256", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "XYZ", "kid": "alien"},
            {"kty": "RSA", "kid": "encrypt-only", "key_ops": ["encrypt"], "n": RSA_N, "e": "AQAB"},
            "not an object",
            rsa("good"),
        ])))
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0.as_deref(), Some("good"));
    }

    #[test]
    fn refuses_documents_that_are_not_a_jwks() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"[[]]",
            b"{}",
            b"{\"keys\": 3}",
            b"",
        ] {
            assert!(parse(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
        assert!(parse(b"{\"keys\": []}").unwrap().is_empty());
    }

    #[test]
    fn key_ops_with_verify_is_kept() {
        let mut key = rsa("ops");
        key["key_ops"] = json!(["verify"]);
        assert_eq!(parse(&doc(json!([key]))).unwrap().len(), 1);
    }

    #[test]
    fn a_duplicated_kid_keeps_neither_key() {
        let keys = parse(&doc(json!([rsa("twin"), rsa("twin"), rsa("single")]))).unwrap();
        let kids: Vec<_> = keys.iter().map(|(k, _)| k.clone().unwrap()).collect();
        assert_eq!(kids, vec!["single"]);
    }

    #[test]
    fn keys_that_fit_no_allowed_algorithm_are_skipped() {
        let keys = super::parse(
            &doc(
                json!([rsa("r"), {"kty": "EC", "kid": "e", "crv": "P-256", "x": EC_X, "y": EC_Y}]),
            ),
            &[Algorithm::ES256],
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0.as_deref(), Some("e"));
    }

    #[test]
    fn a_key_without_kid_is_kept() {
        let mut key = rsa("x");
        key.as_object_mut().unwrap().remove("kid");
        let keys = parse(&doc(json!([key]))).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].0.is_none());
    }
}
