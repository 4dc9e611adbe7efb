//! Clerk-native configuration, organizations, guards and token types.

use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use base64::Engine;
use futures_util::future::join_all;
use keygate::clock::ManualClock;
use keygate::{AuthError, AuthUser, Authenticator, require_auth};
use serde_json::json;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

fn publishable_key(host: &str) -> String {
    format!(
        "pk_test_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))
    )
}

#[actix_rt::test]
async fn publishable_key_pins_the_issuer() {
    let signer = Signer::rs256(0, "ins_1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    // TLS is impossible here, so only the JWKS URL is overridden; the issuer stays derived.
    let app = spawn_app(&[
        (
            "CLERK_PUBLISHABLE_KEY",
            &publishable_key("clerk.example.test"),
        ),
        ("JWKS_URL", &jwks.url),
    ])
    .await;
    app.wait_for_keys().await;
    let mut good = claims("user_1");
    good["iss"] = json!("https://clerk.example.test");
    let mut other = good.clone();
    other["iss"] = json!("https://evil.example.test");

    assert_eq!(
        app.get("/protected", Some(&signer.sign(&good)))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/protected", Some(&signer.sign(&other)))
            .await
            .code(),
        "invalid_issuer"
    );
}

#[actix_rt::test]
async fn backend_api_jwks_carries_the_bearer_secret_and_explicit_urls_never_do() {
    let signer = Signer::rs256(0, "bapi");
    let api = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[
        ("CLERK_SECRET_KEY", "sk_test_backend_secret"),
        ("CLERK_API_URL", &api.base()),
    ])
    .await;
    app.wait_for_keys().await;
    assert_eq!(
        api.authorizations(),
        vec![Some("Bearer sk_test_backend_secret".to_string())]
    );
    assert_eq!(
        app.get("/protected", Some(&signer.sign(&claims("u"))))
            .await
            .status,
        200
    );

    let explicit = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[
        ("CLERK_SECRET_KEY", "sk_test_backend_secret"),
        ("JWKS_URL", &explicit.url),
    ])
    .await;
    app.wait_for_keys().await;
    assert_eq!(explicit.authorizations(), vec![None]);
}

#[actix_rt::test]
async fn v1_and_v2_org_claims_show_the_same_org_in_me() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let mut v1 = claims("user_org");
    v1["org_id"] = json!("org_9");
    v1["org_slug"] = json!("acme");
    v1["org_role"] = json!("org:admin");
    v1["org_permissions"] = json!(["org:invoices:read", "org:invoices:manage"]);
    let mut v2 = claims("user_org");
    v2["v"] = json!(2);
    v2["fea"] = json!("o:invoices,u:notes");
    v2["o"] =
        json!({"id": "org_9", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3"});

    let one = app.get("/me", Some(&hs256(&v1))).await;
    let two = app.get("/me", Some(&hs256(&v2))).await;

    assert_eq!(one.status, 200);
    let expected = json!({"id": "org_9", "slug": "acme", "role": "org:admin", "permissions": ["org:invoices:read", "org:invoices:manage"]});
    assert_eq!(one.body["org"], expected);
    assert_eq!(two.body["org"], expected);
    assert_eq!(one.body["user_id"], "user_org");
    assert_eq!(one.body["session_id"], "sess_user_org");
    let plain = app.get("/me", Some(&hs256(&claims("no_org")))).await;
    assert_eq!(plain.body["org"], json!(null));
}

async fn admin_only(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_org_role("admin")?;
    Ok(HttpResponse::Ok().body("admin"))
}

async fn invoices(user: AuthUser) -> Result<HttpResponse, AuthError> {
    user.require_permission("org:invoices:read")?;
    Ok(HttpResponse::Ok().body("invoices"))
}

async fn open_inside_scope() -> HttpResponse {
    HttpResponse::Ok().body("scope")
}

#[actix_rt::test]
async fn scope_guard_and_role_and_permission_checks() {
    let authenticator = Authenticator::builder().secret(SECRET).build().unwrap();
    let service = test::init_service(
        App::new().app_data(authenticator).service(
            web::scope("/api")
                .wrap(from_fn(require_auth))
                .route("/anything", web::get().to(open_inside_scope))
                .route("/admin", web::get().to(admin_only))
                .route("/invoices", web::get().to(invoices)),
        ),
    )
    .await;
    let mut admin = claims("boss");
    admin["org_id"] = json!("org_1");
    admin["org_role"] = json!("admin");
    admin["org_permissions"] = json!(["org:invoices:read"]);
    let mut member = claims("staff");
    member["org_id"] = json!("org_1");
    member["org_role"] = json!("org:member");
    let call = |path: &'static str, token: Option<String>| {
        let mut req = test::TestRequest::get().uri(path);
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        req.to_request()
    };

    let anonymous = test::call_service(&service, call("/api/anything", None)).await;
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = test::read_body_json(anonymous).await;
    assert_eq!(body["code"], "missing_token");
    assert_eq!(
        test::call_service(&service, call("/api/anything", Some(hs256(&member))))
            .await
            .status(),
        200
    );
    assert_eq!(
        test::call_service(&service, call("/api/admin", Some(hs256(&admin))))
            .await
            .status(),
        200
    );
    let denied = test::call_service(&service, call("/api/admin", Some(hs256(&member)))).await;
    assert_eq!(denied.status(), 403);
    let body: serde_json::Value = test::read_body_json(denied).await;
    assert_eq!(
        body,
        json!({"detail": "Forbidden", "code": "insufficient_permission"})
    );
    assert_eq!(
        test::call_service(&service, call("/api/invoices", Some(hs256(&admin))))
            .await
            .status(),
        200
    );
    assert_eq!(
        test::call_service(&service, call("/api/invoices", Some(hs256(&member))))
            .await
            .status(),
        403
    );
}

#[actix_rt::test]
async fn pending_sessions_are_signed_out_unless_accepted() {
    let strict = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let lenient = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_ACCEPT_PENDING", "true")]).await;
    let mut pending = claims("p");
    pending["sts"] = json!("pending");
    let token = hs256(&pending);

    let refused = strict.get("/protected", Some(&token)).await;

    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body,
        json!({"detail": "Session pending", "code": "session_pending"})
    );
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("Session pending")
    );
    assert_eq!(lenient.get("/protected", Some(&token)).await.status, 200);
}

#[actix_rt::test]
async fn require_azp_rejects_tokens_without_azp() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
        ("JWT_REQUIRE_AZP", "true"),
    ])
    .await;
    let mut no_azp = claims("a");
    no_azp.as_object_mut().unwrap().remove("azp");
    assert_eq!(
        app.get("/protected", Some(&hs256(&no_azp))).await.code(),
        "unauthorized_party"
    );
    assert_eq!(
        app.get("/protected", Some(&hs256(&claims("a"))))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn max_stale_makes_readiness_and_key_dependent_requests_503() {
    let clock = ManualClock::new(now() as u64);
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app_with(
        &[
            ("JWKS_URL", &jwks.url),
            ("JWKS_MAX_STALE_SECS", "60"),
            ("JWT_LEEWAY_SECS", "100000"),
        ],
        clock.clone(),
    )
    .await;
    app.wait_for_keys().await;
    let token = signer.sign(&claims("u"));
    assert_eq!(app.get("/protected", Some(&token)).await.status, 200);
    jwks.set_mode(Mode::Fail);

    clock.advance_secs(61);

    let ready = app.get("/readyz", None).await;
    let reply = app.get("/protected", Some(&token)).await;
    assert_eq!(ready.status, 503);
    assert!(ready.body["reason"].as_str().unwrap().contains("stale"));
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (503, "keys_unavailable")
    );
    // A shared-secret token does not depend on the JWKS.
}

#[actix_rt::test]
async fn token_types_follow_clerk() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let c = claims("t");
    let cases = [
        (json!({"alg": "HS256", "typ": "at+jwt"}), 401),
        (
            json!({"alg": "HS256", "typ": "JWT", "cat": "cl_B7d4PD333AAA"}),
            401,
        ),
        (json!({"alg": "HS256", "typ": "jwt"}), 200),
        (json!({"alg": "HS256"}), 200),
    ];
    for (header, status) in cases {
        let reply = app
            .get("/protected", Some(&hs256_with_header(&header, &c)))
            .await;
        assert_eq!(reply.status, status, "{header}");
        if status == 401 {
            assert_eq!(reply.code(), "token_type_not_accepted", "{header}");
        }
    }
}

#[actix_rt::test]
async fn negative_cache_keeps_a_flood_of_one_unknown_kid_to_one_fetch() {
    let signer = Signer::rs256(0, "known");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let clock = ManualClock::new(now() as u64);
    let app = spawn_app_with(
        &[
            ("JWKS_URL", &jwks.url),
            ("JWKS_COOLDOWN_SECS", "30"),
            ("JWKS_REFRESH_SECS", "60"),
        ],
        clock.clone(),
    )
    .await;
    app.wait_for_keys().await;
    let bad = Signer {
        kid: "ghost".into(),
        ..Signer::rs256(1, "x")
    };
    let tokens: Vec<String> = (0..100)
        .map(|i| bad.sign(&claims(&format!("g{i}"))))
        .collect();

    for chunk in tokens.chunks(25) {
        let replies = join_all(chunk.iter().map(|t| app.get("/protected", Some(t)))).await;
        assert!(replies.iter().all(|r| r.code() == "unknown_key"));
    }
    assert_eq!(
        jwks.fetches(),
        2,
        "the start, then one refetch for the ghost"
    );
    assert_eq!(
        app.metric("keygate_auth_total{result=\"unknown_key\"}")
            .await,
        100.0
    );

    // Published later by a periodic refresh, the kid is accepted at once: the key map
    // is consulted before the negative cache, and nothing is fetched for it.
    jwks.publish(vec![signer.jwk(), Signer::rs256(1, "ghost").jwk()]);
    clock.advance_secs(60);
    crate::common::poll::poll_until("the periodic refresh", WAIT, async || {
        app.metric("keygate_jwks_fetch_total{outcome=\"ok\"}").await >= 3.0
    })
    .await;
    assert_eq!(app.get("/protected", Some(&tokens[0])).await.status, 200);
    assert_eq!(jwks.fetches(), 3);
}
