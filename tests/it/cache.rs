//! The verified-token cache as users see it: hits skip the crypto, but every rule still holds.

use serde_json::json;

use crate::common::*;

fn cache_len(app: &TestApp) -> usize {
    app.keygate.auth.verifier.cache().map_or(0, |c| c.len())
}

#[actix_rt::test]
async fn a_flood_of_distinct_bad_tokens_never_grows_the_cache() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let good = hs256(&claims("u"));
    assert_eq!(app.get("/protected", Some(&good)).await.status, 200);
    assert_eq!(cache_len(&app), 1);

    for i in 0..2000 {
        let forged = hs(
            jsonwebtoken::Algorithm::HS256,
            "a-different-secret-of-32-bytes-or-more",
            &claims(&format!("x{i}")),
        );
        assert_eq!(app.get("/protected", Some(&forged)).await.status, 401);
    }

    assert_eq!(cache_len(&app), 1);
}

#[actix_rt::test]
async fn cached_tokens_still_expire_and_are_still_revoked() {
    let clock = keygate::clock::ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[("JWT_SECRET", SECRET), ("JWT_LEEWAY_SECS", "0")],
        clock.clone(),
    )
    .await;
    let mut c = claims("short");
    c["exp"] = json!(now() + 30);
    let token = hs256(&c);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    let hits = app.get_text("/metrics").await;
    assert!(hits.contains("keygate_token_cache_hits_total 1"), "{hits}");

    app.keygate.revocations.insert("sess_short");
    assert_eq!(
        app.get("/protected", Some(&token)).await.code(),
        "token_revoked"
    );

    let other = hs256(&claims("later"));
    assert_eq!(app.get("/protected", Some(&other)).await.status, 200);
    clock.advance(700);
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
    assert!(app.keygate.auth.verifier.cache().is_none());
    assert!(
        app.get_text("/metrics")
            .await
            .contains("keygate_token_cache_hits_total 0")
    );
}
