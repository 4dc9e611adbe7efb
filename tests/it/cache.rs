//! The verified-token cache as users see it: hits skip the crypto, but every rule still holds.

use serde_json::json;

use crate::common::svix::{self, session_event};
use crate::common::*;

const HITS: &str = "keygate_token_cache_hits_total";
const MISSES: &str = "keygate_token_cache_misses_total";

#[actix_rt::test]
async fn a_flood_of_distinct_bad_tokens_never_grows_the_cache() {
    // One entry: had any forged token been inserted, the good one would be evicted.
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("TOKEN_CACHE_SIZE", "1")]).await;
    let good = hs256(&claims("u"));
    assert_eq!(app.get("/protected", Some(&good)).await.status, 200);
    assert_eq!(app.get("/protected", Some(&good)).await.status, 200);
    assert_eq!(app.metric(HITS).await, 1.0);

    for i in 0..2000 {
        let forged = hs(
            jsonwebtoken::Algorithm::HS256,
            "a-different-secret-of-32-bytes-or-more",
            &claims(&format!("x{i}")),
        );
        assert_eq!(app.get("/protected", Some(&forged)).await.status, 401);
    }

    assert_eq!(app.get("/protected", Some(&good)).await.status, 200);
    assert_eq!(app.metric(HITS).await, 2.0, "the good token was evicted");
    assert_eq!(app.metric(MISSES).await, 2001.0);
}

#[actix_rt::test]
async fn cached_tokens_still_expire_and_are_still_revoked() {
    let start = now();
    let clock = keygate::clock::ManualClock::new(start as u64);
    // With no leeway, the time claims must come from the app's clock: a second that
    // passes on the wall clock would make a fresh token's iat lie in its future.
    let issued = |sub: &str| {
        let mut c = claims(sub);
        c["iat"] = json!(start);
        c["nbf"] = json!(start);
        c["exp"] = json!(start + 600);
        c
    };
    let app = spawn_app_with(
        &[
            ("JWT_SECRET", SECRET),
            ("JWT_LEEWAY_SECS", "0"),
            ("CLERK_WEBHOOK_SECRET", &svix::secret()),
        ],
        clock.clone(),
    )
    .await;
    let mut c = issued("short");
    c["exp"] = json!(start + 30);
    let token = hs256(&c);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    assert_eq!(app.metric(HITS).await, 1.0);

    let revoked = svix::deliver(
        &app,
        "msg_revoke",
        &session_event("session.revoked", "sess_short", "short"),
    )
    .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        app.get("/protected", Some(&token)).await.code(),
        "token_revoked"
    );

    let other = hs256(&issued("later"));
    assert_eq!(app.get("/protected", Some(&other)).await.status, 200);
    clock.advance_secs(700);
    assert_eq!(
        app.get("/protected", Some(&other)).await.code(),
        "token_expired"
    );
}

#[actix_rt::test]
async fn zero_disables_the_cache() {
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("TOKEN_CACHE_SIZE", "0")]).await;
    let token = hs256(&claims("u"));
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    let metrics = app.get_text("/metrics").await;
    assert_eq!(metric_value(&metrics, HITS), 0.0);
    assert_eq!(metric_value(&metrics, MISSES), 0.0);
}
