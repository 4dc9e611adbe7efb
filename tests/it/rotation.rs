//! The key-rotation actor seen from outside: fetch counts at the mock JWKS, cooldown
//! and schedule on the manual clock, outages.

use std::time::Duration;

use futures_util::future::join_all;
use keygate::clock::{Clock, ManualClock};

use crate::common::poll::poll_until;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);
const FETCH_OK: &str = "keygate_jwks_fetch_total{outcome=\"ok\"}";
const FETCH_ERRORS: &str = "keygate_jwks_fetch_total{outcome=\"error\"}";

async fn loaded(app: &TestApp) {
    app.wait_for_keys().await;
}

/// Waits until the app has finished `count` fetches with `outcome`.
async fn fetched(app: &TestApp, sample: &str, count: f64) {
    poll_until(&format!("{sample} >= {count}"), WAIT, async || {
        app.metric(sample).await >= count
    })
    .await;
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
    let clock = ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[("JWKS_URL", &jwks.url), ("JWKS_COOLDOWN_SECS", "30")],
        clock.clone(),
    )
    .await;
    loaded(&app).await;
    let before = jwks.fetches();
    let attacker = Signer::rs256(1, "x");
    let flood = |round: usize| -> Vec<String> {
        (0..40)
            .map(|i| {
                Signer {
                    kid: format!("random-{round}-{i}"),
                    ..attacker.clone()
                }
                .sign(&claims("a"))
            })
            .collect()
    };

    for round in 0..5 {
        let tokens = flood(round);
        let replies = join_all(tokens.iter().map(|t| app.get("/protected", Some(t)))).await;
        assert!(
            replies
                .iter()
                .all(|r| r.status == 401 && r.code() == "unknown_key")
        );
    }
    // 200 distinct unknown kids within one cooldown window: one refetch.
    assert_eq!(jwks.fetches() - before, 1);

    // The clock stands still, so the same kids again cost no fetch at all.
    let tokens = flood(0);
    join_all(tokens.iter().map(|t| app.get("/protected", Some(t)))).await;
    assert_eq!(jwks.fetches() - before, 1);

    // A cooldown later, one more unknown kid may refetch once.
    clock.advance_secs(30);
    let tokens = flood(9);
    join_all(tokens.iter().map(|t| app.get("/protected", Some(t)))).await;
    assert_eq!(jwks.fetches() - before, 2);
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
    let clock = ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[
            ("JWKS_URL", &jwks.url),
            ("JWKS_REFRESH_SECS", "60"),
            ("JWKS_COOLDOWN_SECS", "600"),
        ],
        clock.clone(),
    )
    .await;
    loaded(&app).await;
    let token = gone.sign(&claims("soon-gone"));
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);

    jwks.publish(vec![keep.jwk()]);
    // Nothing happens until the refresh is due.
    assert_eq!(jwks.fetches(), 1);
    clock.advance_secs(60);
    fetched(&app, FETCH_OK, 2.0).await;
    assert_eq!(jwks.fetches(), 2);

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
    let clock = ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[
            ("JWKS_URL", &jwks.url),
            ("JWKS_REFRESH_SECS", "60"),
            ("JWKS_TIMEOUT_SECS", "1"),
            ("TOKEN_CACHE_SIZE", "0"),
        ],
        clock.clone(),
    )
    .await;
    loaded(&app).await;

    for (n, mode) in [Mode::Fail, Mode::Hang, Mode::Garbage, Mode::Oversized]
        .into_iter()
        .enumerate()
    {
        jwks.set_mode(mode);
        // Past the refresh interval, which also caps every backoff.
        clock.advance_secs(61);
        fetched(&app, FETCH_ERRORS, (n + 1) as f64).await;
        let reply = app
            .get("/protected", Some(&signer.sign(&claims("steady"))))
            .await;
        assert_eq!(reply.status, 200, "{mode:?}");
        assert_eq!(app.get("/readyz", None).await.status, 200, "{mode:?}");
    }
    assert_eq!(app.metric(FETCH_OK).await, 1.0);

    // Back to normal: the next retry succeeds.
    jwks.set_mode(Mode::Normal);
    clock.advance_secs(61);
    fetched(&app, FETCH_OK, 2.0).await;
}

#[actix_rt::test]
async fn a_short_max_age_brings_the_next_refresh_forward_but_not_below_30s() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    jwks.set_cache_control("public, max-age=5");
    let clock = ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[("JWKS_URL", &jwks.url), ("JWKS_REFRESH_SECS", "300")],
        clock.clone(),
    )
    .await;
    loaded(&app).await;
    let start = clock.now();
    poll_until("the next refresh to be scheduled", WAIT, async || {
        clock.next_deadline().is_some()
    })
    .await;
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(30)));
    clock.advance_secs(30);
    fetched(&app, FETCH_OK, 2.0).await;
    assert_eq!(jwks.fetches(), 2);
}
