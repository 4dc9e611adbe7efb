//! The attack corpus: forged and hostile tokens are refused with the right code,
//! never 200, never 5xx, and the process stays healthy (RFC 8725 practices).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

async fn refused(app: &TestApp, token: &str, code: &str) {
    let reply = app.get("/protected", Some(token)).await;
    assert_eq!(
        reply.status, 401,
        "expected {code}, got {} {:?}",
        reply.status, reply.body
    );
    assert_eq!(reply.code(), code);
}

fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(&header.to_string()),
        b64(&claims.to_string())
    )
}

fn hmac_token(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

#[actix_rt::test]
async fn forged_tokens_against_a_jwks_service() {
    let real = Signer::rs256(0, "real");
    let attacker = Signer::rs256(1, "real");
    let jwks = MockJwks::start(vec![real.jwk()]).await;
    let evil_jwks = MockJwks::start(vec![attacker.jwk()]).await;
    // The secret is configured too, so HS256 is allowed: key confusion must still fail.
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWT_SECRET", SECRET),
        ("JWT_AUDIENCE", "api"),
    ])
    .await;
    app.wait_for_keys().await;
    let mut c = claims("victim");
    c["aud"] = json!("api");
    let good = real.sign(&c);
    assert_eq!(app.get("/protected", Some(&good)).await.status, 200);
    let (input, _) = good.rsplit_once('.').unwrap();

    // alg none, with and without a signature.
    refused(
        &app,
        &forge(&json!({"alg": "none"}), &c, ""),
        "algorithm_not_allowed",
    )
    .await;
    refused(
        &app,
        &forge(&json!({"alg": "none", "kid": "real"}), &c, "c2ln"),
        "algorithm_not_allowed",
    )
    .await;
    refused(
        &app,
        &forge(&json!({"alg": "None"}), &c, ""),
        "algorithm_not_allowed",
    )
    .await;
    // Key confusion: HS256 keyed with the RSA public key, as PEM and as DER.
    let pem = real.public_pem.clone();
    let der = ::pem::parse(&pem).unwrap().into_contents();
    for key in [pem.as_bytes().to_vec(), der] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "real"});
        refused(&app, &hmac_token(&key, &header, &c), "invalid_signature").await;
    }
    // Tampered payload, empty signature.
    let mut elevated = c.clone();
    elevated["sub"] = json!("admin");
    refused(
        &app,
        &format!(
            "{}.{}.{}",
            input.split('.').next().unwrap(),
            b64(&elevated.to_string()),
            good.rsplit('.').next().unwrap()
        ),
        "invalid_signature",
    )
    .await;
    refused(&app, &format!("{input}."), "invalid_signature").await;
    // Embedded jwk / jku / x5u / x5c naming the attacker's key: ignored, so the signature fails.
    let headers = [
        json!({"jwk": attacker.jwk()}),
        json!({"jku": evil_jwks.url}),
        json!({"x5u": evil_jwks.url}),
        json!({"x5c": ["MIIB"]}),
    ];
    for header in headers {
        refused(
            &app,
            &attacker.sign_with_header(&header, &c),
            "invalid_signature",
        )
        .await;
    }
    assert_eq!(
        evil_jwks.fetches(),
        0,
        "keygate fetched a key URL named by a token"
    );
    // crit
    refused(
        &app,
        &real.sign_with_header(&json!({"crit": ["exp"], "exp": 1}), &c),
        "malformed_token",
    )
    .await;
    // Structure
    refused(&app, &format!("{good}.x"), "malformed_token").await;
    refused(&app, "a.b", "malformed_token").await;
    refused(&app, &format!("{input}.***"), "malformed_token").await;
    refused(&app, "!!!.@@@.###", "malformed_token").await;
    refused(&app, &"A".repeat(17 * 1024), "malformed_token").await;
    assert!(app.get("/healthz", None).await.status == 200);
}

#[actix_rt::test]
async fn ecdsa_zero_signature_is_refused() {
    // CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    let signer = Signer::es256("ec");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWT_ALGORITHMS", "ES256")]).await;
    app.wait_for_keys().await;
    let zero = URL_SAFE_NO_PAD.encode([0u8; 64]);
    let token = forge(&json!({"alg": "ES256", "kid": "ec"}), &claims("u"), &zero);
    refused(&app, &token, "invalid_signature").await;
    assert_eq!(
        app.get("/protected", Some(&signer.sign(&claims("u"))))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn hostile_kids_and_payloads() {
    let real = Signer::rs256(0, "real");
    let jwks = MockJwks::start(vec![real.jwk()]).await;
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWT_SECRET", SECRET),
        ("JWT_AUDIENCE", "api"),
    ])
    .await;
    app.wait_for_keys().await;
    for kid in [
        "../../../../etc/passwd",
        "' OR 1=1 --",
        "nul\u{0}byte",
        "%00",
        &"k".repeat(5000),
    ] {
        let token = Signer {
            kid: kid.to_string(),
            ..real.clone()
        }
        .sign(&claims("u"));
        refused(&app, &token, "unknown_key").await;
    }
    let header = json!({"alg": "HS256", "typ": "JWT"});
    // A JSON array as payload, and deeply nested JSON, correctly signed.
    let array = format!("{}.{}", b64(&header.to_string()), b64("[1,2,3]"));
    let sig = jsonwebtoken::crypto::sign(
        array.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    refused(&app, &format!("{array}.{sig}"), "malformed_token").await;
    let deep = format!(
        "{{\"sub\":\"u\",\"exp\":9999999999,\"x\":{}{}}}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let nested = format!("{}.{}", b64(&header.to_string()), b64(&deep));
    let sig = jsonwebtoken::crypto::sign(
        nested.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    refused(&app, &format!("{nested}.{sig}"), "malformed_token").await;
    // Claims of the wrong type.
    let mut base = claims("u");
    base["aud"] = json!("api");
    let cases = [
        ("exp", json!("9999999999"), "malformed_token"),
        ("sub", json!(42), "missing_claim"),
        ("aud", json!({"api": 1}), "invalid_audience"),
    ];
    for (name, value, code) in cases {
        let mut c = base.clone();
        c[name] = value;
        refused(&app, &hs256(&c), code).await;
    }
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/protected", Some(&hs256(&base))).await.status, 200);
}
