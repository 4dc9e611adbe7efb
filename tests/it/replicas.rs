//! Replicas on one PostgreSQL database (SPEC §5 and §12): a revocation received by
//! one replica is pushed to the others through `NOTIFY keygate_revocations`; with a
//! replica's listening connection killed, the poll still brings revocations and the
//! replica listens again once it can; a replica started after a revocation enforces
//! it from its first request. PostgreSQL only (`TEST_DATABASE_URL`).

use std::time::Duration;

use sqlx::AnyConnection;

use crate::common::db::{connect, database_urls, is_postgres, postgres_admin_url, remove_database};
use crate::common::poll::{SETTLE, poll_until};
use crate::common::svix;
use crate::common::*;

/// The `application_name` of a replica's listening connection.
const LISTENER_APP: &str = "keygate-revocations";
const LISTENER_UP: &str = "keygate_revocation_listener_up";
const RECONNECTS: &str = "keygate_revocation_listener_reconnects_total";
/// How quickly a revocation must reach every replica (SPEC §5).
const PROPAGATION: Duration = Duration::from_secs(5);
/// The listener's reconnect backoff grows to 10 s; one more attempt must fit.
const RELISTEN: Duration = Duration::from_secs(25);

/// A fresh PostgreSQL database, or `None` (after the skip notice) without one.
async fn postgres_database(test: &str) -> Option<String> {
    let url = database_urls()
        .await
        .into_iter()
        .find(|url| is_postgres(url));
    if url.is_none() {
        skip_without_postgres(test);
    }
    url
}

/// A replica on `url`: `webhooks` enables `POST /webhooks/clerk`; `poll_secs` is its
/// `REVOCATION_POLL_SECS`.
async fn replica(url: &str, webhooks: bool, poll_secs: &str) -> TestApp {
    let secret = svix::secret();
    let mut vars = vec![
        ("JWT_SECRET", SECRET),
        ("DATABASE_URL", url),
        ("REVOCATION_POLL_SECS", poll_secs),
    ];
    if webhooks {
        vars.push(("CLERK_WEBHOOK_SECRET", &secret));
    }
    spawn_app(&vars).await
}

/// An HS256 token of `user` whose `sid` is `sess_<user>`.
fn token_of(user: &str) -> String {
    hs256(&claims(user))
}

/// Revokes `sess_<user>` through `app`'s webhook.
async fn revoke_through(app: &TestApp, user: &str) {
    let sid = format!("sess_{user}");
    let body = svix::session_event("session.revoked", &sid, user);
    let reply = svix::deliver(app, &format!("msg_{sid}"), &body).await;
    assert_eq!(reply.status, 204, "revoking {sid}: {:?}", reply.body);
}

/// Waits until `app` refuses `user`'s token with `token_revoked`; every answer before
/// that must be the usual 200.
async fn wait_for_revocation(app: &TestApp, user: &str, within: Duration, what: &str) {
    let token = token_of(user);
    poll_until(what, within, async || {
        let reply = app.get("/protected", Some(&token)).await;
        if reply.status == 401 {
            reply.assert_unauthorized("token_revoked", "Token revoked", what);
            return true;
        }
        assert_hello(&reply, user, what);
        false
    })
    .await;
}

async fn wait_for_metric(app: &TestApp, sample: &str, wanted: f64, within: Duration) {
    poll_until(&format!("{sample} to be {wanted}"), within, async || {
        app.metric(sample).await == wanted
    })
    .await;
}

/// Backend pids of the listening connections of `user` on the database of `url`.
async fn listeners_of(admin: &mut AnyConnection, url: &str, user: &str) -> Vec<i32> {
    let database = url.rsplit('/').next().unwrap_or_default();
    let rows: Vec<(i32,)> = sqlx::query_as(
        "SELECT pid FROM pg_stat_activity \
         WHERE application_name = $1 AND usename = $2 AND datname = $3",
    )
    .bind(LISTENER_APP)
    .bind(user)
    .bind(database)
    .fetch_all(&mut *admin)
    .await
    .unwrap();
    rows.into_iter().map(|(pid,)| pid).collect()
}

/// `url` with its credentials replaced by `user:password`.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

#[actix_rt::test]
async fn a_revocation_through_one_replica_is_pushed_to_the_other() {
    let Some(url) =
        postgres_database("a_revocation_through_one_replica_is_pushed_to_the_other").await
    else {
        return;
    };
    let a = replica(&url, true, "5").await;
    // B polls once at start and then only when told: the revocation can only
    // reach it through the notification.
    let b = replica(&url, false, "3600").await;
    wait_for_metric(&b, LISTENER_UP, 1.0, SETTLE).await;
    let user = "user_pushed";
    assert_hello(
        &b.get("/protected", Some(&token_of(user))).await,
        user,
        "B before",
    );

    revoke_through(&a, user).await;
    wait_for_revocation(&b, user, PROPAGATION, "B after A's webhook").await;
    assert_eq!(b.metric("keygate_revoked_sessions").await, 1.0);

    a.stop().await;
    b.stop().await;
    remove_database(&url).await;
}

#[actix_rt::test]
async fn with_its_listener_killed_a_replica_still_polls_and_then_listens_again() {
    let Some(url) =
        postgres_database("with_its_listener_killed_a_replica_still_polls_and_then_listens_again")
            .await
    else {
        return;
    };
    let admin_url = postgres_admin_url().unwrap();
    let mut admin = connect(&admin_url).await;
    // B connects as a role of its own, so the test can keep B from connecting again
    // while the connections its pool already has keep working.
    let role = format!("kg_b_{:016x}", rand::random::<u64>());
    let password = "replica-b-password";
    sqlx::query(&format!(
        "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();

    let a = replica(&url, true, "5").await;
    let b = replica(&as_user(&url, &role, password), false, "1").await;
    wait_for_metric(&b, LISTENER_UP, 1.0, SETTLE).await;
    assert_eq!(b.metric(RECONNECTS).await, 0.0);
    let listeners = listeners_of(&mut admin, &url, &role).await;
    assert_eq!(listeners.len(), 1, "B listens on one connection");

    sqlx::query(&format!("ALTER ROLE {role} NOLOGIN"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (terminated,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
        .bind(listeners[0])
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(terminated);
    wait_for_metric(&b, LISTENER_UP, 0.0, SETTLE).await;

    // Nothing listens on B now: the revocation reaches it through the poll.
    let polled = "user_polled";
    assert_hello(
        &b.get("/protected", Some(&token_of(polled))).await,
        polled,
        "B before",
    );
    revoke_through(&a, polled).await;
    wait_for_revocation(&b, polled, PROPAGATION, "B polling without its listener").await;
    assert_eq!(
        b.metric(LISTENER_UP).await,
        0.0,
        "B cannot have re-listened"
    );

    // Once B may connect again it listens again, and pushed revocations reach it.
    sqlx::query(&format!("ALTER ROLE {role} LOGIN"))
        .execute(&mut admin)
        .await
        .unwrap();
    wait_for_metric(&b, LISTENER_UP, 1.0, RELISTEN).await;
    assert_eq!(b.metric(RECONNECTS).await, 1.0);
    assert_eq!(listeners_of(&mut admin, &url, &role).await.len(), 1);
    let pushed = "user_after_relisten";
    assert_hello(
        &b.get("/protected", Some(&token_of(pushed))).await,
        pushed,
        "B before",
    );
    revoke_through(&a, pushed).await;
    wait_for_revocation(&b, pushed, PROPAGATION, "B listening again").await;

    a.stop().await;
    b.stop().await;
    remove_database(&url).await;
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[actix_rt::test]
async fn a_replica_started_after_a_revocation_enforces_it_from_its_first_request() {
    let Some(url) = postgres_database(
        "a_replica_started_after_a_revocation_enforces_it_from_its_first_request",
    )
    .await
    else {
        return;
    };
    let a = replica(&url, true, "5").await;
    let user = "user_before_start";
    revoke_through(&a, user).await;

    let c = replica(&url, false, "5").await;
    c.get("/protected", Some(&token_of(user)))
        .await
        .assert_unauthorized("token_revoked", "Token revoked", "C's first request");
    let other = "user_not_revoked";
    assert_hello(
        &c.get("/protected", Some(&token_of(other))).await,
        other,
        "C",
    );

    a.stop().await;
    c.stop().await;
    remove_database(&url).await;
}
