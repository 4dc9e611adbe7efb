//! Shared-secret tokens end to end.

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::common::*;

#[actix_rt::test]
async fn seed_hs256_with_user_id_claim_greets_the_user() {
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_USER_CLAIM", "user_id")]).await;
    let token = hs256(&json!({"user_id": "42", "exp": now() + 60}));

    let reply = app.get("/protected", Some(&token)).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"message": "Hello, user 42"}));
}

#[actix_rt::test]
async fn hs384_and_hs512_when_allowed() {
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "HS384,HS512")]).await;
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let reply = app
            .get("/protected", Some(&hs(alg, SECRET, &claims("u1"))))
            .await;
        assert_eq!(reply.status, 200, "{alg:?}");
    }
    let reply = app.get("/protected", Some(&hs256(&claims("u1")))).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (401, "algorithm_not_allowed")
    );
}

#[actix_rt::test]
async fn base64_secret_is_decoded() {
    let raw = [7u8; 48];
    let encoded = format!(
        "base64:{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
    );
    let app = spawn_app(&[("JWT_SECRET", &encoded)]).await;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims("b64"),
        &jsonwebtoken::EncodingKey::from_secret(&raw),
    )
    .unwrap();
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
}

#[actix_rt::test]
async fn session_cookie_is_read_when_there_is_no_bearer_header() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let token = hs256(&claims("cookie-user"));

    let by_cookie = app
        .get_with("/protected", &[("Cookie", &format!("__session={token}"))])
        .await;
    let header_wins = app
        .get_with(
            "/protected",
            &[
                ("Authorization", "bearer garbage"),
                ("Cookie", &format!("__session={token}")),
            ],
        )
        .await;

    assert_eq!(by_cookie.status, 200);
    assert_eq!(by_cookie.body["message"], "Hello, user cookie-user");
    assert_eq!(
        (header_wins.status.as_u16(), header_wins.code()),
        (401, "malformed_token")
    );
}

#[actix_rt::test]
async fn cookie_can_be_renamed_or_disabled() {
    let renamed = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_COOKIE_NAME", "auth")]).await;
    let disabled = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_COOKIE_NAME", "")]).await;
    let token = hs256(&claims("c"));

    let ok = renamed
        .get_with("/protected", &[("Cookie", &format!("auth={token}"))])
        .await;
    let ignored = disabled
        .get_with("/protected", &[("Cookie", &format!("__session={token}"))])
        .await;

    assert_eq!(ok.status, 200);
    assert_eq!(
        (ignored.status.as_u16(), ignored.code()),
        (401, "missing_token")
    );
}

#[actix_rt::test]
async fn health_and_readiness_without_jwks() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let health = app.get("/healthz", None).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(
        (health.status.as_u16(), health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(ready.status, 200);
}
