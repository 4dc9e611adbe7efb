//! Faults under load: a steady stream of authenticated requests, bounded in
//! concurrency, while the JWKS server fails in every way and keys rotate.
//! Good tokens must never fail; JWKS fetches stay within the cooldown budget.
//!
//! Each phase is bounded by counts, not by sleeping and measuring a rate: it lasts
//! until a given number of good requests completed after the fault took effect (a
//! failed fetch counted, a hung fetch received), and a hung fetch must not end before
//! they did — requests that waited for it could not complete while it hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::poll::poll_until;
use crate::common::*;

const FETCH_OK: &str = "keygate_jwks_fetch_total{outcome=\"ok\"}";
const FETCH_ERRORS: &str = "keygate_jwks_fetch_total{outcome=\"error\"}";

/// Concurrent workers sending good tokens.
const WORKERS: usize = 8;

/// Good requests each phase must see completed.
const PER_PHASE: usize = 50;

#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    failed: AtomicUsize,
    flood: AtomicUsize,
}

async fn steady_stream(
    app: Arc<TestApp>,
    signer: Arc<std::sync::RwLock<Signer>>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let token = signer.read().unwrap().sign(&claims(&format!("steady-{i}")));
        let reply = app.get("/protected", Some(&token)).await;
        if reply.status == 200 {
            counts.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("good token failed: {} {:?}", reply.status, reply.body);
        }
    }
}

#[actix_rt::test]
async fn good_tokens_never_fail_while_the_jwks_misbehaves_and_keys_rotate() {
    let mut signers: Vec<Signer> = (0..4)
        .map(|i| Signer::rs256(i, &format!("gen-{i}")))
        .collect();
    let jwks = MockJwks::start(vec![signers[0].jwk()]).await;
    let app = Arc::new(
        spawn_app(&[
            ("JWKS_URL", &jwks.url),
            ("JWKS_REFRESH_SECS", "1"),
            ("JWKS_COOLDOWN_SECS", "1"),
            // Longer than a phase: if requests waited for the hung fetch, the phase would see almost none complete.
            ("JWKS_TIMEOUT_SECS", "3"),
            ("TOKEN_CACHE_SIZE", "0"),
        ])
        .await,
    );
    app.wait_for_keys().await;
    let current = Arc::new(std::sync::RwLock::new(signers[0].clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let fetches_before = jwks.fetches();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            actix_rt::spawn(steady_stream(
                app.clone(),
                current.clone(),
                stop.clone(),
                counts.clone(),
            ))
        })
        .collect();

    // Outages: the known key keeps working through each.
    for mode in [Mode::Fail, Mode::Garbage, Mode::Oversized, Mode::Hang] {
        let errors = app.metric(FETCH_ERRORS).await;
        let fetches = jwks.fetches();
        jwks.set_mode(mode);
        if mode == Mode::Hang {
            // A refresh reached the server and hangs there (JWKS_TIMEOUT_SECS=3).
            poll_until("a fetch to hang", Duration::from_secs(10), async || {
                jwks.fetches() > fetches
            })
            .await;
        } else {
            poll_until(
                &format!("{mode:?} to fail a fetch"),
                Duration::from_secs(10),
                async || app.metric(FETCH_ERRORS).await > errors,
            )
            .await;
        }
        let ok_before = counts.ok.load(Ordering::SeqCst);
        poll_until(
            &format!("{PER_PHASE} good requests during {mode:?}"),
            Duration::from_secs(30),
            async || counts.ok.load(Ordering::SeqCst) >= ok_before + PER_PHASE,
        )
        .await;
        if mode == Mode::Hang {
            // Still hanging: the requests above did not wait for it.
            assert_eq!(
                app.metric(FETCH_ERRORS).await,
                errors,
                "the hung fetch ended before {PER_PHASE} requests completed: requests waited for the JWKS"
            );
        }
    }
    jwks.set_mode(Mode::Normal);
    let flood_stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let app = app.clone();
        let counts = counts.clone();
        let flood_stop = flood_stop.clone();
        let attacker = Signer::rs256(3, "x");
        actix_rt::spawn(async move {
            let mut n = 0u64;
            while !flood_stop.load(Ordering::SeqCst) {
                n += 1;
                let token = Signer {
                    kid: format!("random-{n}"),
                    ..attacker.clone()
                }
                .sign(&claims("attacker"));
                let reply = app.get("/protected", Some(&token)).await;
                assert!(
                    reply.status == 401 || reply.status == 503,
                    "flood got {}",
                    reply.status
                );
                counts.flood.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Rotation every 2 s: publish the next key, sign with it once published long enough
    // for a refresh, retire the previous one later.
    for next in 1..signers.len() {
        let published: Vec<_> = signers[next - 1..=next].iter().map(Signer::jwk).collect();
        jwks.publish(published);
        // Published once a refresh that started after the publish succeeded.
        let loads = app.metric(FETCH_OK).await;
        poll_until(
            &format!("{} to load", signers[next].kid),
            Duration::from_secs(15),
            async || app.metric(FETCH_OK).await >= loads + 2.0,
        )
        .await;
        *current.write().unwrap() = signers[next].clone();
        // Requests signed with the new key, while refreshes go on.
        let ok_before = counts.ok.load(Ordering::SeqCst);
        poll_until(
            &format!("{PER_PHASE} good requests signed by {}", signers[next].kid),
            Duration::from_secs(30),
            async || counts.ok.load(Ordering::SeqCst) >= ok_before + PER_PHASE,
        )
        .await;
    }
    // The previous key retired: loaded by a refresh that started after the publish,
    // and the stream still good after it.
    jwks.publish(vec![signers.last().unwrap().jwk()]);
    let loads = app.metric(FETCH_OK).await;
    poll_until(
        "the retirement to load",
        Duration::from_secs(15),
        async || app.metric(FETCH_OK).await >= loads + 2.0,
    )
    .await;
    let ok_before = counts.ok.load(Ordering::SeqCst);
    poll_until(
        &format!("{PER_PHASE} good requests after the retirement"),
        Duration::from_secs(30),
        async || counts.ok.load(Ordering::SeqCst) >= ok_before + PER_PHASE,
    )
    .await;
    flood_stop.store(true, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    flood.await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    signers.clear();

    let elapsed = started.elapsed().as_secs_f64();
    let fetches = jwks.fetches() - fetches_before;
    let (ok, failed, flood) = (
        counts.ok.load(Ordering::SeqCst),
        counts.failed.load(Ordering::SeqCst),
        counts.flood.load(Ordering::SeqCst),
    );
    println!(
        "faults under load: {elapsed:.1}s, {ok} good requests ok, {failed} failed, {flood} flood requests refused, {fetches} JWKS fetches"
    );
    assert_eq!(failed, 0);
    assert!(ok > 100, "the stream was not steady: {ok}");
    // Budget: one periodic refresh a second plus one unknown-kid refetch per cooldown, plus backoff retries.
    let budget = 2 * elapsed.ceil() as usize + 8;
    assert!(fetches <= budget, "{fetches} fetches > budget {budget}");
}
