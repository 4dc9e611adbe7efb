//! Clerk conformance: claim types and the `exp` boundary, token categories and types
//! (M2M, OAuth, opaque machine tokens through a mock Backend API), Clerk's cookies,
//! RFC 9728 metadata, the names Clerk users already have, and the defects of the
//! hostile-input pass (each with its regression test).

use std::time::Duration;

use futures_util::future::join_all;
use keygate::clock::ManualClock;
use serde_json::{Value, json};

use crate::common::backend_api::{MockBackendApi, m2m_answer};
use crate::common::poll::poll_until;
use crate::common::svix;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);
/// `pk_live_` + base64("clerk.example.com$"); Clerk's SDK names its cookies
/// `__session_naoXFJnI` and `__client_uat_naoXFJnI` for it.
const PUBLISHABLE_KEY: &str = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k";
const SUFFIX: &str = "naoXFJnI";

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn without(mut base: Value, name: &str) -> Value {
    base.as_object_mut().unwrap().remove(name);
    base
}

async fn code_of(app: &TestApp, token: &str) -> (u16, String) {
    let reply = app.get("/protected", Some(token)).await;
    (reply.status.as_u16(), reply.code().to_string())
}

// --- defects of the hostile-input pass -------------------------------------------------

#[actix_rt::test]
async fn an_azp_of_any_other_json_type_is_not_an_authorized_party() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
    ])
    .await;
    let good = claims("u");
    assert_eq!(code_of(&app, &hs256(&good)).await.0, 200);
    for azp in [
        json!(3000),
        json!(["http://localhost:3000"]),
        json!(null),
        json!({"origin": "http://localhost:3000"}),
        json!(true),
        json!("http://localhost:3000/"),
    ] {
        let token = hs256(&with(good.clone(), json!({ "azp": azp })));
        assert_eq!(
            code_of(&app, &token).await,
            (401, "unauthorized_party".into()),
            "azp {azp}"
        );
    }
    // Required by default, as Clerk's verifyToken does; JWT_REQUIRE_AZP=false lets it be absent.
    let absent = hs256(&without(good.clone(), "azp"));
    assert_eq!(code_of(&app, &absent).await.1, "unauthorized_party");
    let lenient = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
        ("JWT_REQUIRE_AZP", "false"),
    ])
    .await;
    assert_eq!(code_of(&lenient, &absent).await.0, 200);
    let null = hs256(&with(good, json!({"azp": null})));
    assert_eq!(code_of(&lenient, &null).await.1, "unauthorized_party");
}

#[actix_rt::test]
async fn a_token_has_expired_at_exactly_exp_plus_leeway() {
    let now = now();
    let clock = ManualClock::new(now as u64);
    let app = spawn_app_with(
        &[("JWT_SECRET", SECRET), ("JWT_LEEWAY_SECS", "5")],
        clock.clone(),
    )
    .await;
    let at = |exp: i64| {
        hs256(&with(
            claims("u"),
            json!({ "exp": exp, "iat": now - 60, "nbf": now - 60 }),
        ))
    };
    assert_eq!(code_of(&app, &at(now - 4)).await.0, 200);
    assert_eq!(
        code_of(&app, &at(now - 5)).await,
        (401, "token_expired".into())
    );
    // The same token through the cache: one second later it has expired there too.
    let token = at(now - 4);
    assert_eq!(code_of(&app, &token).await.0, 200);
    clock.advance_secs(1);
    assert_eq!(code_of(&app, &token).await, (401, "token_expired".into()));
}

#[actix_rt::test]
async fn time_claims_of_another_type_are_malformed_not_absent() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    for (name, value) in [
        ("nbf", json!(null)),
        ("nbf", json!("0")),
        ("iat", json!(null)),
        ("iat", json!([1])),
        ("exp", json!(null)),
        ("exp", json!("9999999999")),
        ("exp", json!(true)),
        ("exp", json!({"at": 1})),
    ] {
        let token = hs256(&with(claims("u"), json!({ name: value })));
        assert_eq!(
            code_of(&app, &token).await,
            (401, "malformed_token".into()),
            "{name}: {value}"
        );
    }
    let no_exp = hs256(&without(claims("u"), "exp"));
    assert_eq!(code_of(&app, &no_exp).await, (401, "missing_claim".into()));
    // Fractional NumericDates are fine (truncated).
    let fractional = hs256(&with(
        claims("u"),
        json!({"exp": now() as f64 + 600.5, "iat": now() as f64 - 0.5}),
    ));
    assert_eq!(code_of(&app, &fractional).await.0, 200);
}

#[actix_rt::test]
async fn jwt_templates_are_not_session_tokens_unless_accepted() {
    let template = hs256_with_header(
        &json!({"alg": "HS256", "typ": "JWT", "cat": "cl_B7d4PD222AAA"}),
        &claims("u"),
    );
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    assert_eq!(
        code_of(&app, &template).await,
        (401, "token_type_not_accepted".into())
    );
    let accepting = spawn_app(&[("JWT_SECRET", SECRET), ("JWT_ACCEPT_TEMPLATES", "true")]).await;
    assert_eq!(code_of(&accepting, &template).await.0, 200);
    for cat in ["cl_B7d4PD111AAA", "cl_I7d4PD111III"] {
        let session = hs256_with_header(&json!({"alg": "HS256", "cat": cat}), &claims("u"));
        assert_eq!(code_of(&app, &session).await.0, 200, "{cat}");
    }
    for cat in [json!("cl_B7d4PD333AAA"), json!("cl_unknown")] {
        let other = hs256_with_header(&json!({"alg": "HS256", "cat": cat}), &claims("u"));
        assert_eq!(
            code_of(&accepting, &other).await,
            (401, "token_type_not_accepted".into()),
            "{cat}"
        );
    }
}

#[actix_rt::test]
async fn a_sid_that_is_not_a_string_never_skips_the_revocation_check() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    for sid in [
        json!(7),
        json!(["sess_u"]),
        json!({"id": "sess_u"}),
        json!(null),
    ] {
        let token = hs256(&with(claims("u"), json!({ "sid": sid })));
        assert_eq!(
            code_of(&app, &token).await,
            (401, "malformed_token".into()),
            "sid {sid}"
        );
    }
    let no_sid = hs256(&without(claims("u"), "sid"));
    assert_eq!(code_of(&app, &no_sid).await.0, 200);
}

#[actix_rt::test]
async fn only_keys_that_can_verify_are_published_and_counted() {
    let good = Signer::rs256(0, "good");
    let ops_verify = Signer::rs256(1, "ops-verify");
    let ops_encrypt = Signer::rs256(2, "ops-encrypt");
    let twin_a = Signer::rs256(3, "twin");
    // Another key material under the same kid.
    let twin_b = Signer::rs256(0, "twin");
    let es = Signer::es256("es-only");
    let mut with_verify = ops_verify.jwk();
    with_verify["key_ops"] = json!(["verify"]);
    let mut encrypt_only = ops_encrypt.jwk();
    encrypt_only["key_ops"] = json!(["encrypt", "wrapKey"]);
    let jwks = MockJwks::start(vec![
        good.jwk(),
        with_verify,
        encrypt_only,
        twin_a.jwk(),
        twin_b.jwk(),
        // RS256 is the only algorithm allowed: an EC key can never verify.
        es.jwk(),
    ])
    .await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWKS_COOLDOWN_SECS", "60")]).await;
    app.wait_for_keys().await;

    assert_eq!(app.metric("keygate_jwks_keys").await, 2.0);
    assert_eq!(code_of(&app, &good.sign(&claims("u"))).await.0, 200);
    assert_eq!(code_of(&app, &ops_verify.sign(&claims("u"))).await.0, 200);
    for (signer, what) in [
        (&ops_encrypt, "key_ops without verify"),
        (&twin_a, "twin a"),
        (&twin_b, "twin b"),
    ] {
        assert_eq!(
            code_of(&app, &signer.sign(&claims("u"))).await,
            (401, "unknown_key".into()),
            "{what}"
        );
    }
}

#[actix_rt::test]
async fn a_secret_is_used_as_its_bytes_untrimmed() {
    let spaced = format!("{SECRET} ");
    let app = spawn_app(&[("JWT_SECRET", &spaced)]).await;
    let with_space = hs(jsonwebtoken::Algorithm::HS256, &spaced, &claims("u"));
    let trimmed = hs256(&claims("u"));
    assert_eq!(code_of(&app, &with_space).await.0, 200);
    assert_eq!(
        code_of(&app, &trimmed).await,
        (401, "invalid_signature".into())
    );
}

#[actix_rt::test]
async fn random_methods_add_no_metric_series() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    app.get("/healthz", None).await;
    // The scrape itself is a series of its own; count from after the first.
    app.get_text("/metrics").await;
    let before = app.get_text("/metrics").await.lines().count();
    for i in 0..40 {
        let method = actix_web::http::Method::from_bytes(format!("BREW{i}X").as_bytes()).unwrap();
        let req = crate::common::app::client().request(method, format!("{}/healthz", app.base));
        crate::common::app::send(req).await;
    }
    let metrics = app.get_text("/metrics").await;
    let added = metrics.lines().count() - before;
    // One new series (method="other", status 405) with its 18 lines of buckets, sum, count.
    assert!(added <= 18, "{added} lines added:\n{metrics}");
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

// --- token types -------------------------------------------------------------------

#[actix_rt::test]
async fn machine_jwts_are_accepted_only_where_their_type_is() {
    let m2m = hs256(
        &json!({"sub": "mch_2abc", "scopes": "read write", "exp": now() + 600, "iat": now()}),
    );
    let m2m_cat = hs256_with_header(
        &json!({"alg": "HS256", "cat": "cl_B7d4PD333AAA"}),
        &json!({"sub": "mch_2abc", "exp": now() + 600}),
    );
    let oauth = hs256_with_header(
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &json!({"sub": "user_2oauth", "scp": ["mcp:read", "mcp:write"], "aud": "https://mcp.test", "exp": now() + 600}),
    );
    let sessions_only = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    for token in [&m2m, &m2m_cat, &oauth] {
        assert_eq!(
            code_of(&sessions_only, token).await,
            (401, "token_type_not_accepted".into())
        );
    }

    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ACCEPT_TOKENS", "session_token,m2m_token,oauth_token"),
        ("OAUTH_AUDIENCE", "https://mcp.test"),
    ])
    .await;
    let me = app.get("/me", Some(&m2m)).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(
        (
            &me.body["user_id"],
            &me.body["token_type"],
            &me.body["scopes"]
        ),
        (
            &json!("mch_2abc"),
            &json!("m2m_token"),
            &json!(["read", "write"])
        )
    );
    assert_eq!(
        app.get("/me", Some(&m2m_cat)).await.body["token_type"],
        "m2m_token"
    );
    let me = app.get("/me", Some(&oauth)).await;
    assert_eq!(
        (
            &me.body["user_id"],
            &me.body["token_type"],
            &me.body["scopes"]
        ),
        (
            &json!("user_2oauth"),
            &json!("oauth_token"),
            &json!(["mcp:read", "mcp:write"])
        )
    );
    // Space-separated `scope` works too; an OAuth token for another audience does not.
    let scoped = hs256_with_header(
        &json!({"alg": "HS256", "typ": "application/at+jwt"}),
        &json!({"sub": "user_2oauth", "scope": "a b", "aud": ["https://mcp.test"], "exp": now() + 600}),
    );
    assert_eq!(
        app.get("/me", Some(&scoped)).await.body["scopes"],
        json!(["a", "b"])
    );
    let elsewhere = hs256_with_header(
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &json!({"sub": "user_2oauth", "aud": "https://other.test", "exp": now() + 600}),
    );
    assert_eq!(
        code_of(&app, &elsewhere).await,
        (401, "invalid_audience".into())
    );
    // Session tokens still work next to them, and show their type.
    let session = app.get("/me", Some(&hs256(&claims("user_s")))).await;
    assert_eq!(session.body["token_type"], "session_token");
    assert!(session.body.get("scopes").is_none());

    let machines_only =
        spawn_app(&[("JWT_SECRET", SECRET), ("JWT_ACCEPT_TOKENS", "m2m_token")]).await;
    assert_eq!(
        code_of(&machines_only, &hs256(&claims("u"))).await,
        (401, "token_type_not_accepted".into())
    );
    assert_eq!(code_of(&machines_only, &m2m).await.0, 200);
}

async fn machine_app(api: &MockBackendApi, clock: Option<std::sync::Arc<ManualClock>>) -> TestApp {
    let vars = [
        ("JWT_SECRET", SECRET),
        ("CLERK_SECRET_KEY", "sk_test_backend_api_secret"),
        ("CLERK_API_URL", api.url.as_str()),
        (
            "JWT_ACCEPT_TOKENS",
            "session_token,m2m_token,oauth_token,api_key",
        ),
        ("OAUTH_AUDIENCE", "https://mcp.test"),
        ("JWKS_TIMEOUT_SECS", "2"),
    ];
    match clock {
        Some(clock) => spawn_app_with(&vars, clock).await,
        None => spawn_app(&vars).await,
    }
}

#[actix_rt::test]
async fn opaque_machine_tokens_are_checked_with_the_backend_api() {
    let api = MockBackendApi::start().await;
    let exp_ms = (now() + 3600) * 1000;
    api.accept("mt_good", m2m_answer("mch_1", &["read"], Some(exp_ms)));
    api.accept(
        "oat_good",
        json!({"object": "clerk_idp_oauth_access_token", "id": "oat_id", "client_id": "client_1",
               "subject": "user_2o", "scopes": ["mcp"], "aud": ["https://mcp.test"],
               "revoked": false, "expired": false, "expiration": exp_ms}),
    );
    api.accept(
        "ak_good",
        json!({"object": "api_key", "id": "ak_id", "name": "ci", "subject": "user_2k",
               "scopes": [], "claims": null, "revoked": false, "expired": false, "expiration": null}),
    );
    api.accept("mt_revoked", json!({"subject": "mch_1", "revoked": true}));
    api.accept(
        "oat_elsewhere",
        json!({"subject": "user_2o", "aud": ["https://other.test"]}),
    );
    let app = machine_app(&api, None).await;

    for (token, user, kind) in [
        ("mt_good", "mch_1", "m2m_token"),
        ("oat_good", "user_2o", "oauth_token"),
        ("ak_good", "user_2k", "api_key"),
    ] {
        let me = app.get("/me", Some(token)).await;
        assert_eq!(me.status, 200, "{token}: {:?}", me.body);
        assert_eq!(
            (&me.body["user_id"], &me.body["token_type"]),
            (&json!(user), &json!(kind))
        );
    }
    assert_eq!(
        app.get("/me", Some("mt_good")).await.body["scopes"],
        json!(["read"])
    );
    assert_eq!(
        app.get("/me", Some("mt_good")).await.body["expires_at"],
        json!(exp_ms / 1000)
    );

    // Each endpoint got its body, with the secret key as a bearer, and nothing else did.
    let received = api.received();
    let first = |path: &str| received.iter().find(|r| r.path == path).unwrap().clone();
    assert_eq!(
        first("/v1/m2m_tokens/verify").body,
        json!({"token": "mt_good"})
    );
    assert_eq!(
        first("/v1/oauth_applications/access_tokens/verify").body,
        json!({"access_token": "oat_good"})
    );
    assert_eq!(
        first("/v1/api_keys/verify").body,
        json!({"secret": "ak_good"})
    );
    assert!(
        received
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sk_test_backend_api_secret"))
    );
    // Repeated use of one token: one call.
    assert_eq!(api.calls_for("mt_good"), 1);

    assert_eq!(
        code_of(&app, "mt_revoked").await,
        (401, "token_revoked".into())
    );
    assert_eq!(
        code_of(&app, "oat_elsewhere").await,
        (401, "invalid_audience".into())
    );
    assert_eq!(
        code_of(&app, "ak_unknown").await,
        (401, "invalid_signature".into())
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("keygate_backend_api_requests_total{outcome=\"verified\"} 3"),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn answers_are_cached_refusals_for_ten_seconds_and_one_call_serves_a_burst() {
    let api = MockBackendApi::start().await;
    let clock = ManualClock::new(now() as u64);
    // Expires in 30 s: trusted for those 30 s, not the full 60.
    let exp_ms = (now() + 30) * 1000;
    api.accept("mt_burst", m2m_answer("mch_1", &[], Some(exp_ms)));
    api.accept("mt_long", m2m_answer("mch_2", &[], None));
    let app = machine_app(&api, Some(clock.clone())).await;

    let replies = join_all((0..20).map(|_| app.get("/protected", Some("mt_burst")))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(api.calls_for("mt_burst"), 1, "single flight");

    // A refusal is not retried within 10 s, and is after.
    assert_eq!(code_of(&app, "mt_nope").await.0, 401);
    clock.advance_secs(9);
    assert_eq!(code_of(&app, "mt_nope").await.0, 401);
    assert_eq!(api.calls_for("mt_nope"), 1);
    clock.advance_secs(1);
    assert_eq!(code_of(&app, "mt_nope").await.0, 401);
    assert_eq!(api.calls_for("mt_nope"), 2);

    // A verified answer lasts at most 60 s...
    assert_eq!(code_of(&app, "mt_long").await.0, 200);
    clock.advance_secs(59);
    assert_eq!(code_of(&app, "mt_long").await.0, 200);
    assert_eq!(api.calls_for("mt_long"), 1);
    clock.advance_secs(1);
    assert_eq!(code_of(&app, "mt_long").await.0, 200);
    assert_eq!(api.calls_for("mt_long"), 2);
    // ...and never past the token's own expiry (now 80 s past the 30 s it had).
    assert_eq!(
        code_of(&app, "mt_burst").await,
        (401, "token_expired".into())
    );
    assert_eq!(api.calls_for("mt_burst"), 2);
}

#[actix_rt::test]
async fn the_backend_api_down_is_503_and_without_a_secret_key_machine_tokens_are_not_accepted() {
    let api = MockBackendApi::start().await;
    api.fail_with(Some(500));
    let app = machine_app(&api, None).await;
    let reply = app.get("/protected", Some("mt_any")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        json!({"detail": "Signing keys unavailable", "code": "keys_unavailable"})
    );
    assert!(reply.header("retry-after").is_some());
    // Session tokens are unaffected by the API.
    assert_eq!(code_of(&app, &hs256(&claims("u"))).await.0, 200);

    let no_secret = spawn_app(&[
        ("JWT_SECRET", SECRET),
        (
            "JWT_ACCEPT_TOKENS",
            "session_token,m2m_token,oauth_token,api_key",
        ),
    ])
    .await;
    for token in ["mt_x", "oat_x", "ak_x"] {
        assert_eq!(
            code_of(&no_secret, token).await,
            (401, "token_type_not_accepted".into()),
            "{token}"
        );
    }
    // A type the route does not accept never reaches the API.
    let sessions = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CLERK_SECRET_KEY", "sk_test_x"),
        ("CLERK_API_URL", api.url.as_str()),
    ])
    .await;
    let calls = api.received().len();
    assert_eq!(
        code_of(&sessions, "ak_x").await,
        (401, "token_type_not_accepted".into())
    );
    assert_eq!(api.received().len(), calls);
}

// --- Clerk's cookies ---------------------------------------------------------------

async fn cookie_app() -> (TestApp, Signer, MockJwks) {
    let signer = Signer::rs256(0, "ins_1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[
        ("CLERK_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
        ("JWKS_URL", &jwks.url),
    ])
    .await;
    app.wait_for_keys().await;
    (app, signer, jwks)
}

fn clerk_claims(user: &str, iat: i64) -> Value {
    with(
        claims(user),
        json!({"iss": "https://clerk.example.com", "iat": iat, "nbf": iat}),
    )
}

#[actix_rt::test]
async fn cookies_follow_clerks_names_and_client_uat() {
    let (app, signer, _jwks) = cookie_app().await;
    let issued = now() - 30;
    let token = signer.sign(&clerk_claims("user_c", issued));
    let other = signer.sign(&clerk_claims("user_other", issued));
    let get = |cookies: String| {
        let app = &app;
        async move {
            let reply = app
                .get_with("/protected", &[("Cookie", cookies.as_str())])
                .await;
            (reply.status.as_u16(), reply.code().to_string(), reply.body)
        }
    };

    // The suffixed cookies win over the unsuffixed ones.
    let (status, _, body) = get(format!(
        "__session={other}; __session_{SUFFIX}={token}; __client_uat={issued}; __client_uat_{SUFFIX}={issued}"
    ))
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"message": "Hello, user user_c"}))
    );
    let (status, _, body) = get(format!("__session={token}; __client_uat={issued}")).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"message": "Hello, user user_c"}))
    );

    // No active client: signed out.
    for cookies in [
        format!("__session={token}"),
        format!("__session={token}; __client_uat=0"),
        format!("__session_{SUFFIX}={token}; __client_uat_{SUFFIX}=0; __client_uat={issued}"),
    ] {
        let (status, code, _) = get(cookies.clone()).await;
        assert_eq!((status, code.as_str()), (401, "missing_token"), "{cookies}");
    }
    // A token issued before the client's last sign-in state change is outdated.
    let (status, code, body) = get(format!("__session={token}; __client_uat={}", issued + 1)).await;
    assert_eq!((status, code.as_str()), (401, "session_outdated"));
    assert_eq!(body["detail"], "Invalid token");

    // Header tokens are not affected by the cookies.
    let reply = app
        .get_with(
            "/protected",
            &[
                ("Authorization", format!("Bearer {token}").as_str()),
                ("Cookie", "__client_uat=0"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
}

// --- RFC 9728 and the names Clerk users have -----------------------------------------

#[actix_rt::test]
async fn protected_resource_metadata_for_mcp_clients() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "https://clerk.example.com"),
        ("JWT_ACCEPT_TOKENS", "oauth_token"),
        ("OAUTH_AUDIENCE", "https://mcp.example.com/mcp"),
    ])
    .await;
    let doc = app
        .get("/.well-known/oauth-protected-resource/mcp", None)
        .await;
    assert_eq!(doc.status, 200);
    assert_eq!(
        doc.body,
        json!({
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": ["https://clerk.example.com"],
            "bearer_methods_supported": ["header"],
        })
    );
    let metadata =
        "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";
    let missing = app.get("/protected", None).await;
    assert_eq!(
        missing.header("www-authenticate"),
        Some(format!("Bearer {metadata}").as_str())
    );
    let bad = app.get("/protected", Some("a.b.c")).await;
    assert_eq!(
        bad.header("www-authenticate"),
        Some(
            format!(
                "Bearer error=\"invalid_token\", error_description=\"Invalid token\", {metadata}"
            )
            .as_str()
        )
    );
    // Without OAuth tokens accepted there is no metadata and no parameter.
    let plain = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("OAUTH_AUDIENCE", "https://mcp.example.com/mcp"),
    ])
    .await;
    assert_eq!(
        plain
            .get("/.well-known/oauth-protected-resource/mcp", None)
            .await
            .status,
        404
    );
    assert_eq!(
        plain
            .get("/protected", None)
            .await
            .header("www-authenticate"),
        Some("Bearer")
    );
}

#[actix_rt::test]
async fn a_nextjs_env_local_configures_keygate_as_it_is() {
    let signer = Signer::rs256(0, "ins_1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let app = spawn_app(&[
        ("NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
        ("JWKS_URL", &jwks.url),
        ("CLERK_AUTHORIZED_PARTIES", "https://app.example.com"),
        ("CLERK_WEBHOOK_SIGNING_SECRET", &svix::secret()),
    ])
    .await;
    app.wait_for_keys().await;
    let good = with(
        claims("user_n"),
        json!({"iss": "https://clerk.example.com", "azp": "https://app.example.com"}),
    );
    assert_eq!(code_of(&app, &signer.sign(&good)).await.0, 200);
    // The issuer comes from the publishable key, the parties from CLERK_AUTHORIZED_PARTIES.
    let foreign = with(good.clone(), json!({"iss": "https://other.example.com"}));
    assert_eq!(
        code_of(&app, &signer.sign(&foreign)).await.1,
        "invalid_issuer"
    );
    let party = with(good.clone(), json!({"azp": "http://localhost:3000"}));
    assert_eq!(
        code_of(&app, &signer.sign(&party)).await.1,
        "unauthorized_party"
    );
    // The webhook route exists with the signing secret's other name.
    let event = svix::session_event("session.revoked", "sess_user_n", "user_n");
    assert_eq!(svix::deliver(&app, "msg_alias", &event).await.status, 204);
    poll_until("the revocation", WAIT, async || {
        code_of(&app, &signer.sign(&good)).await.1 == "token_revoked"
    })
    .await;
}
