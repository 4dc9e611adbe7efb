//! Persistence through the running app: revocations that outlive a restart and
//! reach another replica, just-in-time user rows, an unreachable database, and
//! `keygate migrate`. Each test runs on SQLite and, when `TEST_DATABASE_URL` is
//! set, on PostgreSQL.

use std::process::Command;
use std::time::{Duration, Instant};

use keygate::clock::{Clock, ManualClock, SharedClock};
use serde_json::json;

use crate::common::app::Reply;
use crate::common::db::{
    all_rows, count_rows, database_urls, drop_postgres_database, engine, is_postgres, last_seen,
    postgres_admin_url, remove_database,
};
use crate::common::poll::{SETTLE, poll_until};
use crate::common::svix;
use crate::common::*;

/// How quickly a revocation must reach every replica (SPEC §5).
const PROPAGATION: Duration = Duration::from_secs(5);

async fn app_on(url: &str, webhooks: bool) -> TestApp {
    app_on_with_clock(url, webhooks, keygate::clock::system()).await
}

async fn app_on_with_clock(url: &str, webhooks: bool, clock: SharedClock) -> TestApp {
    app_on_with(url, webhooks, &[], clock).await
}

async fn app_on_with(
    url: &str,
    webhooks: bool,
    extra: &[(&str, &str)],
    clock: SharedClock,
) -> TestApp {
    let secret = svix::secret();
    let mut vars = vec![("JWT_SECRET", SECRET), ("DATABASE_URL", url)];
    if webhooks {
        vars.push(("CLERK_WEBHOOK_SECRET", &secret));
    }
    vars.extend_from_slice(extra);
    spawn_app_with(&vars, clock).await
}

fn token(user: &str, sid: &str) -> String {
    let mut c = claims(user);
    c["sid"] = json!(sid);
    hs256(&c)
}

fn revoke_event(sid: &str) -> Vec<u8> {
    json!({
        "type": "session.revoked",
        "object": "event",
        "data": {
            "id": sid,
            "object": "session",
            "status": "revoked",
            "user_id": "user_x",
            "expire_at": (now() + 7 * 86400) * 1000
        }
    })
    .to_string()
    .into_bytes()
}

fn assert_revoked(reply: &Reply, what: &str) {
    reply.assert_unauthorized("token_revoked", "Token revoked", what);
}

#[actix_rt::test]
async fn a_revocation_survives_a_restart_on_the_same_database() {
    for url in database_urls().await {
        let db = engine(&url);
        let revoked = token("user_restart", "sess_restart");
        let kept = token("user_restart", "sess_kept");

        let app = app_on(&url, true).await;
        assert_hello(
            &app.get("/protected", Some(&revoked)).await,
            "user_restart",
            db,
        );
        let reply = svix::deliver(&app, "msg_restart", &revoke_event("sess_restart")).await;
        assert_eq!(reply.status, 204, "{db}: {:?}", reply.body);
        assert_revoked(&app.get("/protected", Some(&revoked)).await, db);
        drop(app);

        // A new process on the same database: revoked from its very first request.
        let app = app_on(&url, false).await;
        assert_revoked(
            &app.get("/protected", Some(&revoked)).await,
            &format!("{db} after restart"),
        );
        assert_hello(
            &app.get("/protected", Some(&kept)).await,
            "user_restart",
            db,
        );

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn two_instances_on_one_postgres_database_share_revocations() {
    if postgres_admin_url().is_none() {
        skip_without_postgres("two_instances_on_one_postgres_database_share_revocations");
        return;
    }
    let url = database_urls()
        .await
        .into_iter()
        .find(|url| is_postgres(url))
        .unwrap();
    let a = app_on(&url, true).await;
    let b = app_on(&url, false).await;
    let user = "user_replicas";
    let revoked = token(user, "sess_replicas");
    assert_hello(&a.get("/protected", Some(&revoked)).await, user, "A");
    assert_hello(&b.get("/protected", Some(&revoked)).await, user, "B");

    let reply = svix::deliver(&a, "msg_replicas", &revoke_event("sess_replicas")).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let revoked_at = Instant::now();
    assert_revoked(&a.get("/protected", Some(&revoked)).await, "A");

    // B never saw the webhook; it learns of the revocation from the database.
    poll_until(
        "B to refuse the revoked session (within PROPAGATION of the webhook)",
        PROPAGATION.saturating_sub(revoked_at.elapsed()),
        async || {
            let reply = b.get("/protected", Some(&revoked)).await;
            if reply.status == 401 {
                assert_revoked(&reply, "B");
                return true;
            }
            assert_hello(&reply, user, "B before the revocation reached it");
            false
        },
    )
    .await;

    // A profile written through A is what B's /me shows.
    let body = json!({
        "type": "user.created",
        "data": {
            "id": user,
            "email_addresses": [{"id": "idn_1", "email_address": "replica@example.com"}],
            "primary_email_address_id": "idn_1",
            "first_name": "Rep",
            "last_name": "Lica",
            "image_url": null
        }
    })
    .to_string();
    assert_eq!(
        svix::deliver(&a, "msg_profile", body.as_bytes())
            .await
            .status,
        204
    );
    let me = b.get("/me", Some(&token(user, "sess_other"))).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(
        me.body["profile"],
        json!({"email": "replica@example.com", "first_name": "Rep", "last_name": "Lica", "image_url": null})
    );

    drop(a);
    drop(b);
    remove_database(&url).await;
}

#[actix_rt::test]
async fn the_first_request_creates_the_user_and_repeats_within_a_minute_write_nothing() {
    for url in database_urls().await {
        let db = engine(&url);
        let clock = ManualClock::new(now() as u64);
        let app = app_on_with_clock(&url, false, clock.clone()).await;
        let user = "user_jit";
        let tok = token(user, "sess_jit");
        assert_eq!(last_seen(&url, user).await, None, "{db}");

        // The app's clock, not the system's: the second may have turned since it was made.
        let started = i64::try_from(clock.unix_secs()).unwrap();
        assert_hello(&app.get("/protected", Some(&tok)).await, user, db);
        // The row is written off the request path.
        poll_until(&format!("{db}: the user's row"), SETTLE, async || {
            last_seen(&url, user).await.is_some()
        })
        .await;
        assert_eq!(last_seen(&url, user).await, Some(Some(started)), "{db}");

        // Half a minute later: repeats do not touch the row.
        clock.advance_secs(30);
        for n in 0..20 {
            assert_hello(
                &app.get("/protected", Some(&tok)).await,
                user,
                &format!("{db} repeat {n}"),
            );
        }
        // The writer works in order: once another user's row exists, any write the
        // repeats had queued would have landed already.
        let barrier = "user_barrier";
        assert_hello(
            &app.get("/protected", Some(&token(barrier, "sess_barrier")))
                .await,
            barrier,
            db,
        );
        poll_until(
            &format!("{db}: the barrier user's row"),
            SETTLE,
            async || last_seen(&url, barrier).await.is_some(),
        )
        .await;
        assert_eq!(last_seen(&url, user).await, Some(Some(started)), "{db}");

        // Past the minute, the next request refreshes last_seen_at.
        clock.advance_secs(31);
        assert_hello(&app.get("/protected", Some(&tok)).await, user, db);
        poll_until(&format!("{db}: the refresh"), SETTLE, async || {
            last_seen(&url, user).await == Some(Some(started + 61))
        })
        .await;

        drop(app);
        remove_database(&url).await;
    }
}

/// An outage is a PostgreSQL database dropped under the app's feet, ending its
/// connections. An embedded SQLite file cannot be taken away from connections that
/// have it open (removing the file or its directory leaves them working), so this
/// runs on PostgreSQL only (`TEST_DATABASE_URL`, which CI sets).
#[actix_rt::test]
async fn protected_keeps_answering_while_the_database_is_unreachable() {
    let urls: Vec<String> = database_urls()
        .await
        .into_iter()
        .filter(|url| is_postgres(url))
        .collect();
    if urls.is_empty() {
        skip_without_postgres("protected_keeps_answering_while_the_database_is_unreachable");
    }
    for url in urls {
        let db = engine(&url);
        // Polls every second, so several fail within the test's patience.
        let app = app_on_with(
            &url,
            true,
            &[("REVOCATION_POLL_SECS", "1")],
            keygate::clock::system(),
        )
        .await;
        let known = token("user_known", "sess_known");
        let revoked = token("user_known", "sess_gone");
        assert_hello(&app.get("/protected", Some(&known)).await, "user_known", db);
        poll_until(&format!("{db}: the user's row"), SETTLE, async || {
            last_seen(&url, "user_known").await.is_some()
        })
        .await;
        assert_eq!(
            svix::deliver(&app, "msg_gone", &revoke_event("sess_gone"))
                .await
                .status,
            204,
            "{db}"
        );
        assert_eq!(app.get("/readyz", None).await.status, 200, "{db}");
        // A replica that keeps its place in the load balancer through an outage.
        let lenient = spawn_app(&[
            ("JWT_SECRET", SECRET),
            ("DATABASE_URL", &url),
            ("READYZ_DATABASE", "false"),
        ])
        .await;
        let ready = lenient.get("/readyz", None).await;
        assert_eq!(
            (ready.status.as_u16(), ready.body),
            (200, json!({"status": "ready", "database": "ok"})),
            "{db}"
        );

        drop_postgres_database(&url).await;

        // Users the app has seen and users it has not (whose row it now fails
        // to write in the background) are served as usual.
        for n in 0..5 {
            assert_hello(
                &app.get("/protected", Some(&known)).await,
                "user_known",
                &format!("{db} known user, request {n}"),
            );
            assert_hello(
                &app.get("/protected", Some(&token("user_new", "sess_new")))
                    .await,
                "user_new",
                &format!("{db} new user, request {n}"),
            );
        }

        let me = app.get("/me", Some(&known)).await;
        assert_eq!(me.status, 503, "{db}: {:?}", me.body);
        assert_eq!(
            me.body,
            json!({"detail": "Service unavailable", "code": "unavailable"}),
            "{db}"
        );
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, 503, "{db}: {:?}", ready.body);
        assert_eq!(
            ready.body,
            json!({"status": "unready", "reason": "database unreachable", "database": "unreachable"}),
            "{db}"
        );
        let ready = lenient.get("/readyz", None).await;
        assert_eq!(
            (ready.status.as_u16(), ready.body),
            (200, json!({"status": "ready", "database": "unreachable"})),
            "{db}: READYZ_DATABASE=false"
        );
        assert_hello(
            &lenient.get("/protected", Some(&known)).await,
            "user_known",
            db,
        );
        drop(lenient);
        assert_eq!(app.get("/healthz", None).await.status, 200, "{db}");

        // Across several failed revocation polls, the last known set stays in force
        // and valid tokens keep working.
        let failures = "keygate_revocation_sync_failures_total";
        poll_until(&format!("{db}: three failed polls"), SETTLE, async || {
            if app.metric(failures).await >= 3.0 {
                return true;
            }
            assert_hello(&app.get("/protected", Some(&known)).await, "user_known", db);
            assert_revoked(&app.get("/protected", Some(&revoked)).await, db);
            false
        })
        .await;
        assert_hello(&app.get("/protected", Some(&known)).await, "user_known", db);
        assert_revoked(&app.get("/protected", Some(&revoked)).await, db);

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn keygate_migrate_creates_the_tables_and_can_run_again() {
    for url in database_urls().await {
        let db = engine(&url);
        for run in 1..=2 {
            let out = Command::new(env!("CARGO_BIN_EXE_keygate"))
                .arg("migrate")
                .env_clear()
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn")
                // Away from the repository, so no developer's .env is read.
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{db} run {run}: {:?}\nstdout: {stdout}\nstderr: {stderr}",
                out.status
            );
            assert!(
                stdout.contains("migrations applied"),
                "{db} run {run}: {stdout}"
            );
        }
        assert_eq!(all_rows(&url).await, (0, 0, 0), "{db}");
        let migrations =
            std::fs::read_dir(format!("{}/migrations/{db}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .count();
        assert_eq!(
            count_rows(&url, "_sqlx_migrations").await,
            i64::try_from(migrations).unwrap(),
            "{db}: each migration recorded once"
        );

        // The service starts on the migrated database and uses it.
        let app = app_on(&url, false).await;
        assert_eq!(app.get("/readyz", None).await.status, 200, "{db}");
        assert_hello(
            &app.get("/protected", Some(&token("user_m", "sess_m")))
                .await,
            "user_m",
            db,
        );
        poll_until(&format!("{db}: the user's row"), SETTLE, async || {
            last_seen(&url, "user_m").await.is_some()
        })
        .await;

        drop(app);
        remove_database(&url).await;
    }
}
