//! Every failure code of the contract: status, body and `WWW-Authenticate`.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::common::svix;
use crate::common::*;

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

async fn assert_rejected(app: &TestApp, token: &str, code: &str, detail: &str) {
    app.get("/protected", Some(token))
        .await
        .assert_unauthorized(code, detail, code);
}

#[actix_rt::test]
async fn missing_token_has_a_plain_challenge() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    for headers in [
        vec![],
        vec![("Authorization", "Basic dXNlcjpwYXNz")],
        vec![("Authorization", "Bearer")],
    ] {
        let reply = app.get_with("/protected", &headers).await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.body,
            json!({"detail": "Not authenticated", "code": "missing_token"})
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[actix_rt::test]
async fn each_claim_failure_has_its_code() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "https://issuer.test"),
        ("JWT_AUDIENCE", "api"),
        ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
        ("JWT_LEEWAY_SECS", "5"),
    ])
    .await;
    let good = with(claims("u"), json!({"aud": "api"}));
    let n = now();
    assert_eq!(app.get("/protected", Some(&hs256(&good))).await.status, 200);

    let cases = [
        (json!({"exp": n - 10}), "token_expired", "Token expired"),
        (
            json!({"nbf": n + 60}),
            "token_not_yet_valid",
            "Invalid token",
        ),
        (
            json!({"iat": n + 60}),
            "token_issued_in_future",
            "Invalid token",
        ),
        (json!({"exp": null}), "missing_claim", "Invalid token"),
        (json!({"sub": ""}), "missing_claim", "Invalid token"),
        (json!({"sub": 42}), "missing_claim", "Invalid token"),
        (
            json!({"exp": "tomorrow"}),
            "malformed_token",
            "Invalid token",
        ),
        (
            json!({"iss": "https://evil.test"}),
            "invalid_issuer",
            "Invalid token",
        ),
        (json!({"iss": null}), "invalid_issuer", "Invalid token"),
        (json!({"aud": "other"}), "invalid_audience", "Invalid token"),
        (
            json!({"aud": ["x", "y"]}),
            "invalid_audience",
            "Invalid token",
        ),
        (json!({"aud": null}), "invalid_audience", "Invalid token"),
        (
            json!({"aud": {"api": true}}),
            "invalid_audience",
            "Invalid token",
        ),
        (
            json!({"azp": "https://evil.test"}),
            "unauthorized_party",
            "Invalid token",
        ),
    ];
    for (patch, code, detail) in cases {
        assert_rejected(&app, &hs256(&with(good.clone(), patch)), code, detail).await;
    }
    // Within the leeway is still fine.
    let lenient = with(
        good.clone(),
        json!({"exp": n - 2, "nbf": n + 2, "iat": n + 2}),
    );
    assert_eq!(
        app.get("/protected", Some(&hs256(&lenient))).await.status,
        200
    );
    // aud as an array containing the audience is fine.
    let array_aud = with(good.clone(), json!({"aud": ["x", "api"]}));
    assert_eq!(
        app.get("/protected", Some(&hs256(&array_aud))).await.status,
        200
    );
    // azp absent is refused, as Clerk's verifyToken does (JWT_REQUIRE_AZP defaults to true).
    let no_azp = with(good.clone(), json!({"azp": null}));
    assert_rejected(&app, &hs256(&no_azp), "unauthorized_party", "Invalid token").await;
}

#[actix_rt::test]
async fn shape_algorithm_and_signature_failures() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let good = hs256(&claims("u"));
    let (signing_input, _) = good.rsplit_once('.').unwrap();

    assert_rejected(&app, "not-a-token", "malformed_token", "Invalid token").await;
    assert_rejected(
        &app,
        &format!("{good}.extra"),
        "malformed_token",
        "Invalid token",
    )
    .await;
    assert_rejected(
        &app,
        &"a".repeat(17 * 1024),
        "malformed_token",
        "Invalid token",
    )
    .await;
    assert_rejected(
        &app,
        &hs(Algorithm::HS512, SECRET, &claims("u")),
        "algorithm_not_allowed",
        "Invalid token",
    )
    .await;
    assert_rejected(
        &app,
        &hs(
            Algorithm::HS256,
            "another-secret-that-is-long-enough-too",
            &claims("u"),
        ),
        "invalid_signature",
        "Invalid token",
    )
    .await;
    assert_rejected(
        &app,
        &format!("{signing_input}."),
        "invalid_signature",
        "Invalid token",
    )
    .await;
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims("u").to_string())
    );
    assert_rejected(&app, &none, "algorithm_not_allowed", "Invalid token").await;
    let rs = Signer::rs256(0, "k1").sign(&claims("u"));
    assert_rejected(&app, &rs, "algorithm_not_allowed", "Invalid token").await;
}

#[actix_rt::test]
async fn unknown_key_and_keys_unavailable() {
    let signer = Signer::rs256(0, "known");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWKS_COOLDOWN_SECS", "0")]).await;
    app.wait_for_keys().await;

    let stranger = Signer::rs256(1, "stranger").sign(&claims("u"));
    assert_rejected(&app, &stranger, "unknown_key", "Public key not found").await;

    let never = spawn_app(&[("JWKS_URL", "http://127.0.0.1:9/jwks.json")]).await;
    let reply = never
        .get("/protected", Some(&signer.sign(&claims("u"))))
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        json!({"detail": "Signing keys unavailable", "code": "keys_unavailable"})
    );
    assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

#[actix_rt::test]
async fn revoked_session_is_refused() {
    let secret = svix::secret();
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("CLERK_WEBHOOK_SECRET", &secret)]).await;
    let token = hs256(&claims("r"));
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);

    let event = svix::session_event("session.revoked", "sess_r", "r");
    assert_eq!(svix::deliver(&app, "msg_r", &event).await.status, 204);

    assert_rejected(&app, &token, "token_revoked", "Token revoked").await;
}
