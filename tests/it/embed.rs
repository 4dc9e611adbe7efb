//! The `embed` example's own routes, served as the example serves them, called over
//! HTTP: public, optional, protected, scope-guarded, org-role, permission, typed
//! custom claims, plans, features and reverification.

use std::net::TcpListener;

use actix_web::{App, HttpServer};
use keygate::Authenticator;
use serde_json::json;

use crate::common::app::{Reply, client, send};
use crate::common::*;

#[allow(dead_code)]
#[path = "../../examples/embed/app.rs"]
mod example;

/// The example's app on a random port, with an authenticator for `SECRET`.
async fn serve_example() -> String {
    let authenticator = Authenticator::builder().secret(SECRET).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(authenticator.clone())
            .configure(example::routes)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);
    base
}

async fn get(base: &str, path: &str, token: Option<&str>) -> Reply {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(token) = token {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    send(req).await
}

fn member_of_acme(role: &str, permissions: &[&str]) -> String {
    let mut c = claims("user_embed");
    c["org_id"] = json!("org_acme");
    c["org_role"] = json!(role);
    c["org_permissions"] = json!(permissions);
    hs256(&c)
}

#[actix_rt::test]
async fn public_and_optional_routes() {
    let base = serve_example().await;
    let home = get(&base, "/", None).await;
    assert_eq!(
        (home.status.as_u16(), &home.body),
        (200, &json!({"message": "Welcome"}))
    );

    let anonymous = get(&base, "/greeting", None).await;
    assert_eq!(anonymous.body, json!({"message": "Hello, stranger"}));
    let bad = get(&base, "/greeting", Some("not.a.token")).await;
    assert_eq!(
        (bad.status.as_u16(), &bad.body),
        (200, &json!({"message": "Hello, stranger"}))
    );
    let signed_in = get(&base, "/greeting", Some(&hs256(&claims("user_42")))).await;
    assert_eq!(signed_in.body, json!({"message": "Hello, user user_42"}));
}

#[actix_rt::test]
async fn protected_route_needs_a_token() {
    let base = serve_example().await;
    let missing = get(&base, "/profile", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        json!({"detail": "Not authenticated", "code": "missing_token"})
    );
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    let token = member_of_acme("org:member", &[]);
    let profile = get(&base, "/profile", Some(&token)).await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.body["user_id"], "user_embed");
    assert_eq!(profile.body["session_id"], "sess_user_embed");
    assert_eq!(profile.body["org"]["id"], "org_acme");
}

#[actix_rt::test]
async fn the_api_scope_is_guarded_and_org_checks_answer_403() {
    let base = serve_example().await;
    let anonymous = get(&base, "/api/projects", None).await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (401, "missing_token")
    );
    let expired = {
        let mut c = claims("user_embed");
        c["exp"] = json!(now() - 60);
        hs256(&c)
    };
    get(&base, "/api/projects", Some(&expired))
        .await
        .assert_unauthorized("token_expired", "Token expired", "expired");

    let member = member_of_acme("org:member", &["org:invoices:read"]);
    let projects = get(&base, "/api/projects", Some(&member)).await;
    assert_eq!(projects.status, 200);
    assert_eq!(projects.body["owner"], "user_embed");

    let forbidden = json!({"detail": "Forbidden", "code": "insufficient_permission"});
    let admin_as_member = get(&base, "/api/admin", Some(&member)).await;
    assert_eq!(
        (admin_as_member.status.as_u16(), &admin_as_member.body),
        (403, &forbidden)
    );
    let admin = member_of_acme("admin", &[]);
    let admin_ok = get(&base, "/api/admin", Some(&admin)).await;
    assert_eq!(
        (admin_ok.status.as_u16(), &admin_ok.body),
        (200, &json!({"org": "org_acme"}))
    );

    assert_eq!(get(&base, "/api/invoices", Some(&member)).await.status, 200);
    let no_permission = get(&base, "/api/invoices", Some(&admin)).await;
    assert_eq!(
        (no_permission.status.as_u16(), &no_permission.body),
        (403, &forbidden)
    );
}

#[actix_rt::test]
async fn typed_custom_claims() {
    let base = serve_example().await;
    let mut c = claims("user_embed");
    c["plan"] = json!("pro");
    c["seats"] = json!(5);
    let billing = get(&base, "/api/billing", Some(&hs256(&c))).await;
    assert_eq!(
        (billing.status.as_u16(), &billing.body),
        (200, &json!({"plan": "pro", "seats": 5}))
    );

    // A token without the template's claims does not fit the type.
    let plain = get(&base, "/api/billing", Some(&hs256(&claims("user_embed")))).await;
    plain.assert_unauthorized("missing_claim", "Invalid token", "no plan claim");
}

/// A token with Clerk Billing's and reverification's claims (`None`: left out).
fn billed(pla: Option<&str>, fea: Option<&str>, fva: Option<[i64; 2]>) -> String {
    let mut c = claims("user_embed");
    for (name, value) in [
        ("pla", json!(pla)),
        ("fea", json!(fea)),
        ("fva", json!(fva)),
    ] {
        if !value.is_null() {
            c[name] = value;
        }
    }
    hs256(&c)
}

async fn call(base: &str, method: &str, path: &str, token: &str) -> Reply {
    let req = client()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    send(req).await
}

#[actix_rt::test]
async fn plans_and_features_answer_403_when_missing() {
    let base = serve_example().await;
    let forbidden = json!({"detail": "Forbidden", "code": "insufficient_permission"});
    for (pla, status) in [
        (Some("u:pro"), 200),
        (Some("o:pro,u:free"), 200),
        (Some("u:free"), 403),
        (Some("u:free,pro"), 403), // an element without a scope spoils the claim
        (None, 403),
    ] {
        let reply = get(&base, "/api/reports", Some(&billed(pla, None, None))).await;
        assert_eq!(reply.status, status, "{pla:?}");
        if status == 403 {
            assert_eq!(reply.body, forbidden, "{pla:?}");
        } else {
            assert_eq!(reply.body["plan"], json!(pla), "{pla:?}");
        }
    }
    for (fea, status) in [
        (Some("o:export"), 202),
        (Some("u:export"), 403),
        (None, 403),
    ] {
        let reply = call(&base, "POST", "/api/exports", &billed(None, fea, None)).await;
        assert_eq!(reply.status, status, "{fea:?}");
    }
    // A plan of the wrong JSON type is a malformed token, not a missing plan.
    let mut c = claims("user_embed");
    c["pla"] = json!(["u:pro"]);
    get(&base, "/api/reports", Some(&hs256(&c)))
        .await
        .assert_unauthorized("malformed_token", "Invalid token", "pla is an array");
}

#[actix_rt::test]
async fn a_sensitive_route_asks_for_reverification_as_clerk_does() {
    let base = serve_example().await;
    let step_up = json!({
        "detail": "Reverification required",
        "code": "reverification_required",
        "clerk_error": {
            "type": "forbidden",
            "reason": "reverification-error",
            "metadata": {"reverification": "strict"}
        }
    });
    for (fva, status) in [
        (Some([30, 9]), 200),
        (Some([30, 10]), 403), // an age equal to the limit fails
        (Some([9, -1]), 200),  // no second factor: the first decides
        (Some([10, -1]), 403),
        (Some([-1, -1]), 403),
        (None, 403),
    ] {
        let reply = call(&base, "DELETE", "/api/account", &billed(None, None, fva)).await;
        assert_eq!(reply.status, status, "{fva:?}");
        if status == 403 {
            assert_eq!(reply.body, step_up, "{fva:?}");
            assert_eq!(reply.header("www-authenticate"), None);
        }
    }
    // Plan first, then the step-up: no dialog for a request that would fail anyway.
    let payouts = |pla, fva| billed(pla, None, Some(fva));
    let reply = call(
        &base,
        "POST",
        "/api/payouts",
        &payouts(Some("u:pro"), [0, 0]),
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (403, "insufficient_permission")
    );
    let reply = call(
        &base,
        "POST",
        "/api/payouts",
        &payouts(Some("o:pro"), [5, 0]),
    )
    .await;
    assert_eq!(
        reply.body["clerk_error"]["metadata"]["reverification"],
        json!({"level": "first_factor", "afterMinutes": 5})
    );
    let reply = call(
        &base,
        "POST",
        "/api/payouts",
        &payouts(Some("o:pro"), [4, 0]),
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (200, &json!({"payout": "sent"}))
    );
}

#[actix_rt::test]
async fn an_app_that_forgot_to_register_the_authenticator_answers_500() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| App::new().configure(example::routes))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    actix_rt::spawn(server);
    let reply = get(&base, "/profile", Some(&hs256(&claims("u")))).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        json!({"detail": "Internal error", "code": "internal"})
    );
    // Optional routes treat it as anonymous; the log line says what to add.
    assert_eq!(get(&base, "/greeting", None).await.status, 200);
}
