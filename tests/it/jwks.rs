//! RS256 and friends against a JWKS, the static PEM key, and readiness.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::common::poll::poll_until;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

#[actix_rt::test]
async fn rs256_token_from_the_jwks_is_accepted() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url)]).await;
    app.wait_for_keys().await;

    let reply = app
        .get("/protected", Some(&signer.sign(&claims("user_2abc"))))
        .await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"message": "Hello, user user_2abc"}));
}

#[actix_rt::test]
async fn every_asymmetric_family_verifies_when_allowed() {
    let signers = [
        Signer::rsa(0, "rs384", Algorithm::RS384),
        Signer::rsa(1, "ps256", Algorithm::PS256),
        Signer::es256("es256"),
        Signer::ed25519("ed"),
    ];
    let jwks = MockJwks::start(signers.iter().map(Signer::jwk).collect()).await;
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWT_ALGORITHMS", "RS384,PS256,ES256,EdDSA"),
    ])
    .await;
    app.wait_for_keys().await;
    for signer in &signers {
        let reply = app
            .get("/protected", Some(&signer.sign(&claims("u"))))
            .await;
        assert_eq!(reply.status, 200, "{:?}: {:?}", signer.alg, reply.body);
    }
}

#[actix_rt::test]
async fn jwk_alg_must_match_the_token_alg() {
    // The JWK says RS256; a PS256 token under the same kid is refused.
    let rs = Signer::rsa(0, "k", Algorithm::RS256);
    let ps = Signer::rsa(0, "k", Algorithm::PS256);
    let jwks = MockJwks::start(vec![rs.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWT_ALGORITHMS", "RS256,PS256")]).await;
    app.wait_for_keys().await;

    let reply = app.get("/protected", Some(&ps.sign(&claims("u")))).await;

    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (401, "algorithm_not_allowed")
    );
}

#[actix_rt::test]
async fn token_without_kid_uses_the_only_key() {
    let signer = Signer::rs256(0, "only");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url)]).await;
    app.wait_for_keys().await;
    let token = signer.sign_with_header(&json!({"kid": null}), &claims("u"));

    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);

    jwks.publish(vec![signer.jwk(), Signer::rs256(1, "second").jwk()]);
    let before = jwks.fetches();
    // Force a refresh through an unknown kid, then the kid-less token is ambiguous.
    app.get(
        "/protected",
        Some(&Signer::rs256(2, "nope").sign(&claims("u"))),
    )
    .await;
    assert!(jwks.fetches() > before);
    let reply = app.get("/protected", Some(&token)).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (401, "unknown_key"));
}

#[actix_rt::test]
async fn static_public_key_verifies_without_network() {
    let signer = Signer::rs256(0, "whatever");
    let app = spawn_app(&[("JWT_PUBLIC_KEY", &signer.public_pem)]).await;

    let ok = app
        .get("/protected", Some(&signer.sign(&claims("pem-user"))))
        .await;
    let forged = app
        .get(
            "/protected",
            Some(&Signer::rs256(1, "whatever").sign(&claims("x"))),
        )
        .await;

    assert_eq!(ok.status, 200);
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (401, "invalid_signature")
    );
    assert_eq!(app.get("/readyz", None).await.status, 200);
}

#[actix_rt::test]
async fn static_key_with_escaped_newlines_and_a_jwks_side_by_side() {
    let pem_signer = Signer::es256("pem");
    let jwks_signer = Signer::rs256(0, "jwks-key");
    let jwks = MockJwks::start(vec![jwks_signer.jwk()]).await;
    let escaped = pem_signer.public_pem.replace('\n', "\\n");
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("CLERK_JWT_KEY", &escaped),
        ("JWT_ALGORITHMS", "RS256,ES256"),
    ])
    .await;
    app.wait_for_keys().await;

    assert_eq!(
        app.get("/protected", Some(&pem_signer.sign(&claims("a"))))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/protected", Some(&jwks_signer.sign(&claims("b"))))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn never_loaded_keys_answer_503_and_readiness_follows() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    jwks.set_mode(Mode::Fail);
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWKS_COOLDOWN_SECS", "0")]).await;
    poll_until("the first fetch to fail", WAIT, async || {
        app.metric("keygate_jwks_fetch_total{outcome=\"error\"}")
            .await
            >= 1.0
    })
    .await;

    let unready = app.get("/readyz", None).await;
    let unavailable = app
        .get("/protected", Some(&signer.sign(&claims("u"))))
        .await;

    assert_eq!(unready.status, 503);
    assert_eq!(unready.body["status"], "unready");
    assert!(unready.body["reason"].as_str().unwrap().contains("keys"));
    assert_eq!(
        (unavailable.status.as_u16(), unavailable.code()),
        (503, "keys_unavailable")
    );
    assert!(unavailable.header("retry-after").is_some());

    jwks.set_mode(Mode::Normal);
    // The backoff retry (1 s) loads the keys; readiness turns green without a restart.
    poll_until("readyz to become 200", WAIT, async || {
        app.get("/readyz", None).await.status == 200
    })
    .await;
    assert_eq!(
        app.get("/protected", Some(&signer.sign(&claims("u"))))
            .await
            .status,
        200
    );
}
