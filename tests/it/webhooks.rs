//! `POST /webhooks/clerk` through the running app: Svix verification, each
//! Clerk event's effect on the rows and on what users see, replays, bad bodies.
//! Every test runs on SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL.

use serde_json::{Value, json};

use crate::common::db::{
    self as db_rows, Profile, all_rows, database_urls, engine, last_seen, remove_database,
};
use crate::common::poll::{SETTLE, poll_until};
use crate::common::svix::{self, Headers, OTHER_KEY, session_event};
use crate::common::*;

/// keygate's limit on webhook bodies.
const MAX_BODY: usize = 256 * 1024;

async fn webhook_app(url: &str) -> TestApp {
    spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CLERK_WEBHOOK_SECRET", &svix::secret()),
        ("DATABASE_URL", url),
    ])
    .await
}

/// A token of `user` in session `sid`.
fn token(user: &str, sid: &str) -> String {
    let mut c = claims(user);
    c["sid"] = json!(sid);
    hs256(&c)
}

/// A `user.created`/`user.updated` event shaped like Clerk's, with two email
/// addresses of which `primary` is the primary one.
fn user_event(kind: &str, id: &str, primary: &str, first: &str, last: &str) -> Vec<u8> {
    json!({
        "data": {
            "id": id,
            "object": "user",
            "email_addresses": [
                {"id": "idn_work", "object": "email_address", "email_address": format!("{id}@work.example"),
                 "verification": {"status": "verified", "strategy": "email_code"}, "linked_to": []},
                {"id": "idn_home", "object": "email_address", "email_address": format!("{id}@home.example"),
                 "verification": {"status": "verified", "strategy": "email_code"}, "linked_to": []}
            ],
            "primary_email_address_id": primary,
            "first_name": first,
            "last_name": last,
            "image_url": format!("https://img.clerk.example/{id}.png"),
            "created_at": 1_654_012_591_514_i64,
            "updated_at": 1_654_012_591_835_i64
        },
        "object": "event",
        "type": kind,
        "timestamp": 1_654_012_591_835_i64,
        "instance_id": "ins_test"
    })
    .to_string()
    .into_bytes()
}

fn user_deleted(id: &str) -> Vec<u8> {
    json!({
        "data": {"deleted": true, "id": id, "object": "user"},
        "object": "event",
        "type": "user.deleted"
    })
    .to_string()
    .into_bytes()
}

fn profile_json(id: &str, email: &str, first: &str, last: &str) -> Value {
    json!({
        "email": email,
        "first_name": first,
        "last_name": last,
        "image_url": format!("https://img.clerk.example/{id}.png"),
    })
}

fn assert_revoked(reply: &Reply, what: &str) {
    reply.assert_unauthorized("token_revoked", "Token revoked", what);
}

fn assert_bad_request(reply: &Reply, code: &str, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {:?}", reply.body);
    assert_eq!(reply.code(), code, "{what}: {:?}", reply.body);
    assert!(
        reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {:?}",
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{what}"
    );
}

#[actix_rt::test]
async fn the_route_is_absent_without_a_signing_secret() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let body = session_event("session.revoked", "sess_x", "user_x");
    let reply = svix::deliver(&app, "msg_1", &body).await;
    assert_eq!(reply.status, 404);
    let victim = hs256(&claims("user_x"));
    assert_eq!(app.get("/protected", Some(&victim)).await.status, 200);
}

#[actix_rt::test]
async fn user_events_fill_update_and_clear_the_profile() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;
        let user = "user_2abcAda";
        let me_token = token(user, "sess_ada");

        // Before any webhook: no row, and /me shows the profile with every field
        // unknown, whether or not the request's own just-in-time row has landed.
        assert_eq!(db_rows::profile(&url, user).await, None, "{db}");
        let me = app.get("/me", Some(&me_token)).await;
        assert_eq!(me.status, 200, "{db}: {:?}", me.body);
        assert_eq!(me.body["user_id"], user, "{db}");
        assert_eq!(me.body["session_id"], "sess_ada", "{db}");
        assert_eq!(me.body["profile"], unknown_profile(), "{db}");
        // Let that row settle, so it cannot land after the events below.
        poll_until(&format!("{db}: the just-in-time row"), SETTLE, async || {
            last_seen(&url, user).await.is_some()
        })
        .await;

        // user.created: the primary email is the one primary_email_address_id names.
        let created = user_event("user.created", user, "idn_home", "Ada", "Byron");
        assert_eq!(
            svix::deliver(&app, "msg_created", &created).await.status,
            204,
            "{db}"
        );
        assert_eq!(
            db_rows::profile(&url, user).await,
            Some(Profile {
                user_id: user.to_owned(),
                email: Some(format!("{user}@home.example")),
                first_name: Some("Ada".to_owned()),
                last_name: Some("Byron".to_owned()),
                image_url: Some(format!("https://img.clerk.example/{user}.png")),
            }),
            "{db}"
        );
        let me = app.get("/me", Some(&me_token)).await;
        assert_eq!(me.status, 200, "{db}");
        assert_eq!(
            me.body["profile"],
            profile_json(user, &format!("{user}@home.example"), "Ada", "Byron"),
            "{db}"
        );

        // user.updated: a new primary address and a new last name replace the old ones.
        let updated = user_event("user.updated", user, "idn_work", "Ada", "Lovelace");
        assert_eq!(
            svix::deliver(&app, "msg_updated", &updated).await.status,
            204,
            "{db}"
        );
        let me = app.get("/me", Some(&me_token)).await;
        assert_eq!(
            me.body["profile"],
            profile_json(user, &format!("{user}@work.example"), "Ada", "Lovelace"),
            "{db}"
        );
        assert_eq!(
            db_rows::profile(&url, user).await.unwrap().email,
            Some(format!("{user}@work.example")),
            "{db}"
        );

        // A user.created for a user that never made a request creates the row.
        let other = "user_2abcGrace";
        let body = user_event("user.created", other, "idn_work", "Grace", "Hopper");
        assert_eq!(
            svix::deliver(&app, "msg_other", &body).await.status,
            204,
            "{db}"
        );
        assert_eq!(
            db_rows::profile(&url, other)
                .await
                .unwrap()
                .first_name
                .as_deref(),
            Some("Grace"),
            "{db}"
        );

        // user.deleted removes the row; /me shows an unknown profile, the token stays valid.
        assert_eq!(
            svix::deliver(&app, "msg_deleted", &user_deleted(user))
                .await
                .status,
            204,
            "{db}"
        );
        assert_eq!(db_rows::profile(&url, user).await, None, "{db}");
        let me = app.get("/me", Some(&me_token)).await;
        assert_eq!(me.status, 200, "{db}");
        assert_eq!(me.body["profile"], unknown_profile(), "{db}");
        assert!(db_rows::profile(&url, other).await.is_some(), "{db}");

        // Deleting a user that has no row is still handled.
        assert_eq!(
            svix::deliver(&app, "msg_deleted_again", &user_deleted("user_unknown"))
                .await
                .status,
            204,
            "{db}"
        );

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn session_events_revoke_the_sessions_tokens() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;
        let user = "user_sessions";
        let other_session = token(user, "sess_kept");
        for (n, kind) in ["session.revoked", "session.ended", "session.removed"]
            .into_iter()
            .enumerate()
        {
            let sid = format!("sess_{}", kind.replace('.', "_"));
            let revoked = token(user, &sid);
            // Verified (and cached) before the event.
            let reply = app.get("/protected", Some(&revoked)).await;
            assert_eq!(reply.status, 200, "{db} {kind}: {:?}", reply.body);

            let body = session_event(kind, &sid, user);
            let reply = svix::deliver(&app, &format!("msg_session_{n}"), &body).await;
            assert_eq!(reply.status, 204, "{db} {kind}: {:?}", reply.body);

            assert_revoked(
                &app.get("/protected", Some(&revoked)).await,
                &format!("{db} {kind} /protected"),
            );
            assert_revoked(
                &app.get("/me", Some(&revoked)).await,
                &format!("{db} {kind} /me"),
            );
            // The same token from Clerk's `__session` cookie.
            let cookie = format!("__session={revoked}");
            assert_revoked(
                &app.get_with("/protected", &[("Cookie", cookie.as_str())])
                    .await,
                &format!("{db} {kind} cookie"),
            );
            assert!(db_rows::revoked(&url, &sid).await, "{db} {kind}: no row");
            // Other sessions of the same user are unaffected.
            assert_eq!(
                app.get("/protected", Some(&other_session)).await.status,
                200,
                "{db} {kind}"
            );
        }
        assert_eq!(all_rows(&url).await.1, 3, "{db}");

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn every_signature_failure_is_400_and_writes_nothing() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;
        let sid = "sess_sig";
        let victim = token("user_sig", sid);
        let body = session_event("session.revoked", sid, "user_sig");
        let other_body = session_event("session.revoked", "sess_other", "user_sig");
        let id = "msg_sig";
        let good = Headers::signed(id, &body);
        let t = now();

        let mut cases: Vec<(&str, Headers, Vec<u8>)> = Vec::new();
        for missing in ["svix-id", "svix-timestamp", "svix-signature"] {
            let mut h = good.clone();
            match missing {
                "svix-id" => h.id = None,
                "svix-timestamp" => h.timestamp = None,
                _ => h.signature = None,
            }
            cases.push((missing, h, body.clone()));
        }
        cases.push((
            "empty signature",
            Headers {
                signature: Some(String::new()),
                ..good.clone()
            },
            body.clone(),
        ));
        cases.push((
            "wrong secret",
            Headers {
                signature: Some(svix::sign(OTHER_KEY, id, t, &body)),
                ..good.clone()
            },
            body.clone(),
        ));
        cases.push(("tampered body", good.clone(), other_body.clone()));
        let mut appended = body.clone();
        appended.push(b' ');
        cases.push(("one byte appended", good.clone(), appended));
        cases.push((
            "signed for another id",
            Headers {
                id: Some("msg_else".to_owned()),
                ..good.clone()
            },
            body.clone(),
        ));
        cases.push((
            "timestamp header changed after signing",
            Headers {
                timestamp: Some((t - 1).to_string()),
                ..good.clone()
            },
            body.clone(),
        ));
        cases.push((
            "stale by more than 5 minutes",
            Headers::signed_at(id, t - 5 * 60 - 30, &body),
            body.clone(),
        ));
        cases.push((
            "ahead by more than 5 minutes",
            Headers::signed_at(id, t + 5 * 60 + 30, &body),
            body.clone(),
        ));
        cases.push((
            "timestamp not a number",
            Headers {
                timestamp: Some("yesterday".to_owned()),
                ..good.clone()
            },
            body.clone(),
        ));
        let valid_sig = good.signature.clone().unwrap();
        let valid_b64 = valid_sig.trim_start_matches("v1,");
        cases.push((
            "right signature under another version",
            Headers {
                signature: Some(format!("v2,{valid_b64}")),
                ..good.clone()
            },
            body.clone(),
        ));
        cases.push((
            "several signatures, none valid",
            Headers {
                signature: Some(format!(
                    "v1,{} v1,AAAA v1,not-base64!",
                    svix::sign(OTHER_KEY, id, t, &body).trim_start_matches("v1,")
                )),
                ..good.clone()
            },
            body.clone(),
        ));

        for (what, headers, sent) in &cases {
            let reply = svix::post(&app, headers, sent).await;
            assert_bad_request(&reply, "invalid_signature", &format!("{db}: {what}"));
        }
        assert_eq!(all_rows(&url).await, (0, 0, 0), "{db}: rows written");
        assert_eq!(
            app.get("/protected", Some(&victim)).await.status,
            200,
            "{db}"
        );

        // Several signatures where one is valid (a secret being rotated): accepted,
        // and since nothing was recorded under this id before, it takes effect.
        let rotated = Headers {
            signature: Some(format!(
                "{} v2,{valid_b64} {valid_sig}",
                svix::sign(OTHER_KEY, id, t, &body)
            )),
            ..good.clone()
        };
        let reply = svix::post(&app, &rotated, &body).await;
        assert_eq!(reply.status, 204, "{db}: {:?}", reply.body);
        assert_revoked(&app.get("/protected", Some(&victim)).await, db);

        // Within the tolerance either way is fine.
        for (n, skew) in [-4 * 60, 4 * 60].into_iter().enumerate() {
            let body = session_event("session.ended", &format!("sess_skew_{n}"), "user_sig");
            let id = format!("msg_skew_{n}");
            let reply = svix::post(&app, &Headers::signed_at(&id, t + skew, &body), &body).await;
            assert_eq!(reply.status, 204, "{db} skew {skew}: {:?}", reply.body);
        }
        // The 200 above also created the user's row, in the background.
        let (_, revoked, events) = all_rows(&url).await;
        assert_eq!((revoked, events), (3, 3), "{db}");

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn a_replayed_delivery_is_204_and_changes_nothing() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;
        let user = "user_replay";

        let old = user_event("user.updated", user, "idn_work", "Old", "Name");
        let new = user_event("user.updated", user, "idn_home", "New", "Name");
        assert_eq!(
            svix::deliver(&app, "msg_old", &old).await.status,
            204,
            "{db}"
        );
        assert_eq!(
            svix::deliver(&app, "msg_new", &new).await.status,
            204,
            "{db}"
        );

        // Svix redelivers the old message (same id, same body, a fresh signature).
        let reply = svix::deliver(&app, "msg_old", &old).await;
        assert_eq!(reply.status, 204, "{db}: {:?}", reply.body);
        assert_eq!(reply.body, Value::Null, "{db}: 204 has no body");
        let profile = db_rows::profile(&url, user).await.unwrap();
        assert_eq!(profile.first_name.as_deref(), Some("New"), "{db}");
        assert_eq!(profile.email, Some(format!("{user}@home.example")), "{db}");

        // A replayed user.deleted does not delete a user re-created since.
        assert_eq!(
            svix::deliver(&app, "msg_delete", &user_deleted(user))
                .await
                .status,
            204,
            "{db}"
        );
        let again = user_event("user.created", user, "idn_work", "Back", "Again");
        assert_eq!(
            svix::deliver(&app, "msg_again", &again).await.status,
            204,
            "{db}"
        );
        assert_eq!(
            svix::deliver(&app, "msg_delete", &user_deleted(user))
                .await
                .status,
            204,
            "{db}"
        );
        assert_eq!(
            db_rows::profile(&url, user)
                .await
                .unwrap()
                .first_name
                .as_deref(),
            Some("Back"),
            "{db}"
        );
        assert_eq!(all_rows(&url).await, (1, 0, 4), "{db}");

        drop(app);
        remove_database(&url).await;
    }
}

#[actix_rt::test]
async fn malformed_events_are_400_and_write_nothing() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("not JSON", b"not json".to_vec()),
            ("empty body", Vec::new()),
            (
                "truncated JSON",
                br#"{"type":"user.created","data":{"id":"user_1""#.to_vec(),
            ),
            ("an array", b"[]".to_vec()),
            ("no type", br#"{"data":{"id":"user_1"}}"#.to_vec()),
            (
                "type not a string",
                br#"{"type":5,"data":{"id":"user_1"}}"#.to_vec(),
            ),
            ("user without data", br#"{"type":"user.created"}"#.to_vec()),
            (
                "user without id",
                br#"{"type":"user.created","data":{"first_name":"A"}}"#.to_vec(),
            ),
            (
                "user with empty id",
                br#"{"type":"user.updated","data":{"id":""}}"#.to_vec(),
            ),
            (
                "user id not a string",
                br#"{"type":"user.updated","data":{"id":42}}"#.to_vec(),
            ),
            (
                "deleted without id",
                br#"{"type":"user.deleted","data":{"deleted":true}}"#.to_vec(),
            ),
            (
                "session without id",
                br#"{"type":"session.revoked","data":{"status":"revoked"}}"#.to_vec(),
            ),
            (
                "session with empty id",
                br#"{"type":"session.ended","data":{"id":" "}}"#.to_vec(),
            ),
            (
                "session data not an object",
                br#"{"type":"session.removed","data":"sess_1"}"#.to_vec(),
            ),
        ];
        for (n, (what, body)) in bodies.iter().enumerate() {
            let reply = svix::deliver(&app, &format!("msg_bad_{n}"), body).await;
            assert_bad_request(&reply, "invalid_payload", &format!("{db}: {what}"));
        }
        assert_eq!(all_rows(&url).await, (0, 0, 0), "{db}: rows written");

        // Nothing was recorded under those ids: a good delivery under one of them applies.
        let good = session_event("session.revoked", "sess_after_bad", "user_1");
        assert_eq!(
            svix::deliver(&app, "msg_bad_0", &good).await.status,
            204,
            "{db}"
        );
        assert_revoked(
            &app.get("/protected", Some(&token("user_1", "sess_after_bad")))
                .await,
            db,
        );

        // Unknown event types are acknowledged and only recorded for idempotency.
        let unknown = json!({"type": "email.created", "object": "event", "data": {"id": "ema_1"}});
        let reply = svix::deliver(&app, "msg_unknown", unknown.to_string().as_bytes()).await;
        assert_eq!(reply.status, 204, "{db}: {:?}", reply.body);
        assert_eq!(all_rows(&url).await, (0, 1, 2), "{db}");

        drop(app);
        remove_database(&url).await;
    }
}

/// A signed, otherwise valid event of an unknown type padded to exactly `len` bytes.
fn padded_event(len: usize) -> Vec<u8> {
    let mut body = br#"{"type":"test.padding","data":{},"pad":""#.to_vec();
    let tail = br#""}"#;
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), len);
    body
}

#[actix_rt::test]
async fn bodies_over_256_kib_are_413() {
    for url in database_urls().await {
        let db = engine(&url);
        let app = webhook_app(&url).await;

        let at_limit = padded_event(MAX_BODY);
        let reply = svix::deliver(&app, "msg_at_limit", &at_limit).await;
        assert_eq!(reply.status, 204, "{db}: {:?}", reply.body);

        let over = padded_event(MAX_BODY + 1);
        let reply = svix::deliver(&app, "msg_over", &over).await;
        assert_eq!(reply.status, 413, "{db}: {:?}", reply.body);
        assert_eq!(reply.code(), "payload_too_large", "{db}");

        let huge = padded_event(4 * MAX_BODY);
        let reply = svix::deliver(&app, "msg_huge", &huge).await;
        assert_eq!(reply.status, 413, "{db}: {:?}", reply.body);

        assert_eq!(all_rows(&url).await, (0, 0, 1), "{db}");

        drop(app);
        remove_database(&url).await;
    }
}

/// The profile `/me` shows while nothing is known about the user.
fn unknown_profile() -> Value {
    json!({"email": null, "first_name": null, "last_name": null, "image_url": null})
}
