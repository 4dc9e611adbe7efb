//! The key-rotation actor seen from outside: fetch counts, cooldown, outages.

use std::time::Duration;

use futures_util::future::join_all;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

async fn loaded(app: &TestApp) {
    assert!(
        eventually(WAIT, || app.fetches() >= 1).await,
        "initial fetch never happened"
    );
}

#[actix_rt::test]
async fn new_kid_published_after_start_is_accepted_after_exactly_one_refetch() {
    let old = Signer::rs256(0, "old");
    let new = Signer::rs256(1, "new");
    let jwks = MockJwks::start(vec![old.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url)]).await;
    loaded(&app).await;
    jwks.publish(vec![old.jwk(), new.jwk()]);
    let before = jwks.fetches();

    let reply = app
        .get("/protected", Some(&new.sign(&claims("rotated"))))
        .await;

    assert_eq!(reply.status, 200);
    assert_eq!(jwks.fetches(), before + 1);
    // And no further fetch for the now-known key.
    assert_eq!(
        app.get("/protected", Some(&new.sign(&claims("again"))))
            .await
            .status,
        200
    );
    assert_eq!(jwks.fetches(), before + 1);
}

#[actix_rt::test]
async fn fifty_concurrent_requests_for_one_new_kid_cause_one_fetch() {
    let old = Signer::rs256(0, "old");
    let new = Signer::rs256(1, "new");
    let jwks = MockJwks::start(vec![old.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url)]).await;
    loaded(&app).await;
    jwks.publish(vec![old.jwk(), new.jwk()]);
    let before = jwks.fetches();
    let tokens: Vec<String> = (0..50)
        .map(|i| new.sign(&claims(&format!("u{i}"))))
        .collect();

    let replies = join_all(tokens.iter().map(|t| app.get("/protected", Some(t)))).await;

    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(jwks.fetches(), before + 1);
}

#[actix_rt::test]
async fn flood_of_random_kids_stays_within_the_cooldown_budget() {
    let known = Signer::rs256(0, "known");
    let jwks = MockJwks::start(vec![known.jwk()]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWKS_COOLDOWN_SECS", "30")]).await;
    loaded(&app).await;
    let before = jwks.fetches();
    let attacker = Signer::rs256(1, "x");

    for round in 0..5 {
        let tokens: Vec<String> = (0..40)
            .map(|i| {
                Signer {
                    kid: format!("random-{round}-{i}"),
                    ..attacker.clone()
                }
                .sign(&claims("a"))
            })
            .collect();
        let replies = join_all(tokens.iter().map(|t| app.get("/protected", Some(t)))).await;
        assert!(
            replies
                .iter()
                .all(|r| r.status == 401 && r.code() == "unknown_key")
        );
    }

    // 200 distinct unknown kids within one cooldown window: one refetch at most.
    assert!(
        jwks.fetches() - before <= 1,
        "fetched {} times",
        jwks.fetches() - before
    );
    assert_eq!(
        app.get("/protected", Some(&known.sign(&claims("ok"))))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn removed_key_is_rejected_after_the_next_refresh_even_when_cached() {
    let keep = Signer::rs256(0, "keep");
    let gone = Signer::rs256(1, "gone");
    let jwks = MockJwks::start(vec![keep.jwk(), gone.jwk()]).await;
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWKS_REFRESH_SECS", "1"),
        ("JWKS_COOLDOWN_SECS", "60"),
    ])
    .await;
    loaded(&app).await;
    let token = gone.sign(&claims("soon-gone"));
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);

    jwks.publish(vec![keep.jwk()]);
    let after = jwks.fetches();
    assert!(eventually(WAIT, || jwks.fetches() > after).await);
    assert!(
        eventually(WAIT, || !app
            .keygate
            .service
            .keys
            .current()
            .contains("gone"))
        .await
    );

    let reply = app.get("/protected", Some(&token)).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (401, "unknown_key"));
    assert_eq!(
        app.get("/protected", Some(&keep.sign(&claims("k"))))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn known_keys_keep_working_while_the_jwks_is_down_hanging_or_garbage() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWKS_REFRESH_SECS", "1"),
        ("JWKS_TIMEOUT_SECS", "1"),
        ("TOKEN_CACHE_SIZE", "0"),
    ])
    .await;
    loaded(&app).await;

    for mode in [Mode::Fail, Mode::Hang, Mode::Garbage, Mode::Oversized] {
        jwks.set_mode(mode);
        let errors = app
            .keygate
            .service
            .keys
            .stats()
            .fetch_error
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            eventually(WAIT, || app
                .keygate
                .service
                .keys
                .stats()
                .fetch_error
                .load(std::sync::atomic::Ordering::SeqCst)
                > errors)
            .await,
            "{mode:?} never failed a fetch"
        );
        let reply = app
            .get("/protected", Some(&signer.sign(&claims("steady"))))
            .await;
        assert_eq!(reply.status, 200, "{mode:?}");
        assert_eq!(app.get("/readyz", None).await.status, 200, "{mode:?}");
    }
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("keygate_jwks_fetch_total{outcome=\"error\"}"));
}
