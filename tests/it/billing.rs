//! The rest of Clerk's `has()` through the service: plans, features and step-up
//! reverification in a rules file and `/auth`, what `/me` shows of them, and rules
//! that cannot be met stopping the start.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::app::Reply;
use crate::common::*;

const RULES: &str = r#"
[[rule]]
path = "/api/reports(.*)"
plan = "pro"
[[rule]]
path = "/api/team(.*)"
plan = "org:team"
feature = "org:seats"
[[rule]]
path = "/api/export(.*)"
feature = "user:export"
[[rule]]
path = "/api/account/delete"
reverification = "strict"
[[rule]]
path = "/api/payouts(.*)"
org_role = "admin"
reverification = { level = "first_factor", after_minutes = 5 }
"#;

fn rules_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("keygate-rules-{}.toml", rand::random::<u64>()));
    std::fs::write(&path, text).unwrap();
    path
}

async fn forward_app() -> TestApp {
    let rules = rules_file(RULES);
    spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.to_str().unwrap()),
    ])
    .await
}

/// A token with these extra claims.
fn token(extra: Value) -> String {
    let mut c = claims("user_billing");
    for (name, value) in extra.as_object().unwrap() {
        c[name] = value.clone();
    }
    hs256(&c)
}

/// `/auth` for a Traefik-style original request.
async fn auth(app: &TestApp, method: &str, uri: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    app.get_with(
        "/auth",
        &[
            ("X-Forwarded-Method", method),
            ("X-Forwarded-Uri", uri),
            ("Authorization", &bearer),
        ],
    )
    .await
}

fn step_up(requirement: Value) -> Value {
    json!({
        "detail": "Reverification required",
        "code": "reverification_required",
        "clerk_error": {
            "type": "forbidden",
            "reason": "reverification-error",
            "metadata": {"reverification": requirement}
        }
    })
}

#[actix_rt::test]
async fn forward_auth_decides_plans_and_features_by_the_rules() {
    let app = forward_app().await;
    let forbidden = json!({"detail": "Forbidden", "code": "insufficient_permission"});
    for (uri, extra, status) in [
        ("/api/reports", json!({"pla": "u:pro"}), 200),
        ("/api/reports/q1", json!({"pla": "o:pro"}), 200),
        ("/api/reports", json!({"pla": "u:free"}), 403),
        ("/api/reports", json!({"pla": "pro"}), 403),
        ("/api/reports", json!({"pla": null}), 403),
        ("/api/reports", json!({}), 403),
        ("/api/team", json!({"pla": "o:team", "fea": "o:seats"}), 200),
        ("/api/team", json!({"pla": "u:team", "fea": "o:seats"}), 403),
        ("/api/team", json!({"pla": "o:team", "fea": "u:seats"}), 403),
        ("/api/export", json!({"fea": "ou:export"}), 200),
        ("/api/export", json!({"fea": "o:export"}), 403),
    ] {
        let reply = auth(&app, "GET", uri, &token(extra.clone())).await;
        assert_eq!(reply.status, status, "{uri} {extra}: {:?}", reply.body);
        if status == 403 {
            assert_eq!(reply.body, forbidden, "{uri} {extra}");
        } else {
            assert_eq!(reply.header("x-auth-user-id"), Some("user_billing"));
        }
    }
    // Claims of the wrong JSON type: the token is malformed, whatever the route.
    for extra in [
        json!({"pla": 1}),
        json!({"fea": ["u:export"]}),
        json!({"fva": "0,0"}),
        json!({"fva": [0, "0"]}),
    ] {
        let reply = auth(&app, "GET", "/api/export", &token(extra.clone())).await;
        reply.assert_unauthorized("malformed_token", "Invalid token", &extra.to_string());
    }
}

#[actix_rt::test]
async fn forward_auth_answers_the_step_up_body_clerks_hook_reads() {
    let app = forward_app().await;
    for (fva, status) in [
        (json!([60, 9]), 200),
        (json!([60, 10]), 403),
        (json!([9, -1]), 200),
        (json!([-1, -1]), 403),
        (json!([0, 0, 0]), 403),
        (Value::Null, 403),
    ] {
        let reply = auth(
            &app,
            "POST",
            "/api/account/delete",
            &token(json!({ "fva": fva })),
        )
        .await;
        assert_eq!(reply.status, status, "{fva}: {:?}", reply.body);
        if status == 403 {
            assert_eq!(reply.body, step_up(json!("strict")), "{fva}");
            assert_eq!(reply.header("www-authenticate"), None, "{fva}");
        }
    }

    // The org role is checked before the step-up; then the custom requirement.
    let admin = |fva: Value| token(json!({"org_id": "org_1", "org_role": "org:admin", "fva": fva}));
    let member = token(json!({"org_id": "org_1", "org_role": "org:member", "fva": [0, 0]}));
    let reply = auth(&app, "POST", "/api/payouts", &member).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (403, "insufficient_permission")
    );
    let reply = auth(&app, "POST", "/api/payouts/1", &admin(json!([5, 0]))).await;
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (
            403,
            &step_up(json!({"level": "first_factor", "afterMinutes": 5}))
        )
    );
    assert_eq!(
        auth(&app, "POST", "/api/payouts/1", &admin(json!([4, 100])))
            .await
            .status,
        200
    );
    // Without a token, the answer is still 401, not a step-up.
    let anonymous = app
        .get_with(
            "/auth",
            &[
                ("X-Forwarded-Method", "POST"),
                ("X-Forwarded-Uri", "/api/account/delete"),
            ],
        )
        .await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (401, "missing_token")
    );
}

#[actix_rt::test]
async fn me_shows_plans_features_and_factor_ages() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let with = app
        .get(
            "/me",
            Some(&token(
                json!({"pla": "u:free,o:pro", "fea": "o:seats", "fva": [3, -1]}),
            )),
        )
        .await;
    assert_eq!(with.status, 200, "{:?}", with.body);
    assert_eq!(
        (
            &with.body["plan"],
            &with.body["features"],
            &with.body["fva"]
        ),
        (&json!("u:free,o:pro"), &json!("o:seats"), &json!([3, -1]))
    );
    let without = app.get("/me", Some(&token(json!({})))).await;
    assert_eq!(
        (
            &without.body["plan"],
            &without.body["features"],
            &without.body["fva"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );
}

#[actix_rt::test]
async fn rules_nobody_can_meet_stop_the_start() {
    for (rule, expected) in [
        (
            "reverification = \"paranoid\"",
            "GATEWAY_RULES: rule 1 (/a): unknown reverification preset \"paranoid\"",
        ),
        (
            "reverification = { level = \"mfa\", after_minutes = 5 }",
            "GATEWAY_RULES: rule 1 (/a): unknown reverification level \"mfa\"",
        ),
        (
            "reverification = { level = \"first_factor\", minutes = 5 }",
            "GATEWAY_RULES: rule 1 (/a): unknown reverification key \"minutes\"",
        ),
        (
            "plan = \"team:pro\"",
            "GATEWAY_RULES: rule 1 (/a): plan \"team:pro\" is not a name",
        ),
        ("fea = \"export\"", "GATEWAY_RULES: does not parse"),
    ] {
        let file = rules_file(&format!("[[rule]]\npath = \"/a\"\n{rule}\n"));
        let (code, _, stderr) = run_keygate(
            &["serve"],
            &[
                ("JWT_SECRET", SECRET),
                ("GATEWAY_RULES", file.to_str().unwrap()),
            ],
        );
        assert_eq!(code, 2, "{rule}: {stderr}");
        assert!(stderr.contains(expected), "{rule}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
