//! The signed identity (`GATEWAY_IDENTITY_TOKEN=true`): the upstream verifies
//! `X-Auth-Identity` against keygate's JWKS with jsonwebtoken, as any backend would;
//! replicas sharing a key are interchangeable; a rotation publishes both keys; a
//! client's own `X-Auth-Identity` never arrives; bad keys stop the start.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::common::app::{client, send};
use crate::common::upstream::TestUpstream;
use crate::common::*;

const RULES: &str = r#"
default = "authenticated"
[[rule]]
path = "/api/public(.*)"
access = "public"
"#;

fn rules_file() -> String {
    let path = std::env::temp_dir().join(format!("keygate-rules-{}.toml", rand::random::<u64>()));
    std::fs::write(&path, RULES).unwrap();
    path.to_str().unwrap().to_string()
}

async fn proxy(upstream: &str, extra: &[(&str, &str)]) -> TestApp {
    let rules = rules_file();
    let mut vars = vec![
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.as_str()),
        ("UPSTREAM_URL", upstream),
        ("GATEWAY_IDENTITY_TOKEN", "true"),
    ];
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

/// The JWKS at `path`, with its `Cache-Control`.
async fn jwks(app: &TestApp, path: &str) -> (JwkSet, String) {
    let mut res = client()
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let cache = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.body().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), cache)
}

/// What an upstream does with `X-Auth-Identity`: find the key by `kid` in the JWKS,
/// verify the signature, `iss`, `aud` and `exp`, and read the claims.
fn verify(identity: &str, jwks: &JwkSet, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(identity).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("the identity names its key");
    let jwk = jwks.find(&kid).expect("the identity's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&["keygate"]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(identity, &key, &validation)
        .unwrap()
        .claims
}

fn member_claims(sub: &str) -> Value {
    let mut c = claims(sub);
    c["v"] = json!(2);
    c["o"] = json!({"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,write", "fpm": "3"});
    c["fea"] = json!("o:read,o:write");
    c["pla"] = json!("u:free,o:pro");
    c
}

#[actix_rt::test]
async fn the_upstream_verifies_the_identity_with_keygates_jwks() {
    let upstream = TestUpstream::start().await;
    let key = Signer::es256("unused");
    let app = proxy(
        &upstream.url,
        &[("GATEWAY_IDENTITY_KEY", key.private_pem.as_str())],
    )
    .await;
    let (set, cache) = jwks(&app, "/_keygate/.well-known/jwks.json").await;
    assert_eq!(cache, "max-age=300");
    assert_eq!(set.keys.len(), 1);
    // The JWKS is keygate's, not the upstream's.
    assert_eq!(upstream.count(), 0);

    let c = member_claims("user_id1");
    let token = hs256(&c);
    let reply = app
        .get_with(
            "/api/orders",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Auth-Identity", "forged.by.client"),
                ("X_Auth_Identity", "forged.again"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    let identities = seen.all("x-auth-identity");
    assert_eq!(identities.len(), 1, "{identities:?}");
    assert!(!identities[0].contains("forged"));
    let header = jsonwebtoken::decode_header(identities[0]).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let claims = verify(identities[0], &set, &upstream.url);
    assert_eq!(claims["iss"], "keygate");
    assert_eq!(claims["aud"], upstream.url.as_str());
    assert_eq!(claims["sub"], "user_id1");
    assert_eq!(claims["sid"], "sess_user_id1");
    assert_eq!(claims["org"]["id"], "org_1");
    assert_eq!(claims["org"]["slug"], "acme");
    assert_eq!(claims["org"]["role"], "org:admin");
    assert!(claims["org"]["permissions"].is_array());
    assert_eq!(claims["pla"], "u:free,o:pro");
    assert_eq!(claims["fea"], "o:read,o:write");
    assert_eq!(claims["token_type"], "session_token");
    assert!(claims.get("scopes").is_none(), "{claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp - iat <= 60 && exp > iat, "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    // The plain identity headers agree with the signed one.
    assert_eq!(seen.header("x-auth-user-id"), Some("user_id1"));

    // Without a token on a public route: no identity at all, the client's included.
    let anonymous = app
        .get_with("/api/public/x", &[("X-Auth-Identity", "forged")])
        .await;
    assert_eq!(anonymous.status, 200);
    assert!(upstream.last().identity_names().is_empty());
    // With a valid token on a public route: the identity.
    app.get_with(
        "/api/public/x",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    let public = upstream.last();
    let claims = verify(
        public.header("x-auth-identity").unwrap(),
        &set,
        &upstream.url,
    );
    assert_eq!(claims["sub"], "user_id1");
}

#[actix_rt::test]
async fn an_identity_is_minted_once_per_token_and_again_near_its_end() {
    let upstream = TestUpstream::start().await;
    let start = now();
    let clock = keygate::clock::ManualClock::new(start as u64);
    let rules = rules_file();
    let app = spawn_app_with(
        &[
            ("JWT_SECRET", SECRET),
            ("GATEWAY_RULES", rules.as_str()),
            ("UPSTREAM_URL", upstream.url.as_str()),
            ("GATEWAY_IDENTITY_TOKEN", "true"),
            ("JWT_LEEWAY_SECS", "0"),
        ],
        clock.clone(),
    )
    .await;
    let (set, _) = jwks(&app, "/_keygate/.well-known/jwks.json").await;
    let mut c = claims("user_memo");
    c["iat"] = json!(start);
    c["nbf"] = json!(start);
    c["exp"] = json!(start + 600);
    let token = format!("Bearer {}", hs256(&c));
    let identity = async || {
        let reply = app.get_with("/api/x", &[("Authorization", &token)]).await;
        assert_eq!(reply.status, 200);
        upstream
            .last()
            .header("x-auth-identity")
            .unwrap()
            .to_string()
    };
    let first = identity().await;
    let claims = verify(&first, &set, &upstream.url);
    assert_eq!(claims["exp"].as_i64().unwrap(), start + 60);
    // The same token: the same identity, no signature.
    assert_eq!(identity().await, first);
    clock.advance(std::time::Duration::from_secs(49));
    assert_eq!(identity().await, first, "11 s left: kept");
    clock.advance(std::time::Duration::from_secs(2));
    let renewed = identity().await;
    assert_ne!(renewed, first, "9 s left: minted again");
    let jwt_claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            renewed.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(jwt_claims["iat"].as_i64().unwrap(), start + 51);
    assert_eq!(jwt_claims["exp"].as_i64().unwrap(), start + 111);
    assert_ne!(jwt_claims["jti"], claims["jti"]);
    assert_eq!(identity().await, renewed);

    // A token that ends sooner than a minute: the identity ends with it.
    let mut short = claims_at("user_short", start + 51);
    short["exp"] = json!(start + 51 + 20);
    let short = format!("Bearer {}", hs256(&short));
    app.get_with("/api/x", &[("Authorization", &short)]).await;
    let seen = upstream.last();
    let id = seen.header("x-auth-identity").unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_audience(&[upstream.url.as_str()]);
    let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();
    let decoded = jsonwebtoken::decode::<Value>(id, &key, &validation).unwrap();
    assert_eq!(decoded.claims["exp"].as_i64().unwrap(), start + 71);
    // Less than 10 s left, but it cannot outlive its token: kept, not minted again.
    clock.advance(std::time::Duration::from_secs(12));
    app.get_with("/api/x", &[("Authorization", &short)]).await;
    assert_eq!(upstream.last().header("x-auth-identity"), Some(id));
}

fn claims_at(sub: &str, at: i64) -> Value {
    let mut c = claims(sub);
    c["iat"] = json!(at);
    c["nbf"] = json!(at);
    c["exp"] = json!(at + 600);
    c
}

#[actix_rt::test]
async fn forward_auth_answers_with_the_identity_and_publishes_the_jwks_at_the_root() {
    let key = Signer::ed25519("unused");
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_IDENTITY_TOKEN", "true"),
        ("GATEWAY_IDENTITY_AUDIENCE", "https://api.example.com"),
        ("GATEWAY_IDENTITY_ISSUER", "keygate"),
        ("GATEWAY_IDENTITY_KEY", key.private_pem.as_str()),
    ])
    .await;
    let (set, cache) = jwks(&app, "/.well-known/jwks.json").await;
    assert_eq!(cache, "max-age=300");
    let token = hs256(&claims("user_fa"));
    let reply = app
        .get_with(
            "/auth",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Forwarded-Uri", "/anything"),
                ("X-Auth-Identity", "forged"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let identity = reply.header("x-auth-identity").unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(identity).unwrap().alg,
        Algorithm::EdDSA
    );
    let claims = verify(identity, &set, "https://api.example.com");
    assert_eq!(claims["sub"], "user_fa");
    assert!(claims.get("org").is_none(), "{claims}");
    // A refusal carries none.
    let refused = app
        .get_with("/auth", &[("X-Auth-Identity", "forged")])
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("x-auth-identity").is_none());
}

#[actix_rt::test]
async fn machine_tokens_carry_their_scopes() {
    let upstream = TestUpstream::start().await;
    let backend = crate::common::backend_api::MockBackendApi::start().await;
    let token = "mt_identityscopes";
    backend.accept(
        token,
        crate::common::backend_api::m2m_answer(
            "mch_1",
            &["read", "write"],
            Some((now() + 3600) * 1000),
        ),
    );
    let rules = rules_file();
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.as_str()),
        ("UPSTREAM_URL", upstream.url.as_str()),
        ("GATEWAY_IDENTITY_TOKEN", "true"),
        ("CLERK_SECRET_KEY", "sk_test_identity"),
        ("CLERK_API_URL", backend.url.as_str()),
        ("JWT_ACCEPT_TOKENS", "session_token,m2m_token"),
    ])
    .await;
    let (set, _) = jwks(&app, "/_keygate/.well-known/jwks.json").await;
    let reply = app
        .get_with("/api/x", &[("Authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let claims = verify(
        upstream.last().header("x-auth-identity").unwrap(),
        &set,
        &upstream.url,
    );
    assert_eq!(claims["sub"], "mch_1");
    assert_eq!(claims["token_type"], "m2m_token");
    assert_eq!(claims["scopes"], json!(["read", "write"]));
    assert!(claims.get("sid").is_none());
}

#[actix_rt::test]
async fn replicas_sharing_a_key_are_interchangeable_and_a_rotation_publishes_both_keys() {
    let upstream = TestUpstream::start().await;
    let old = Signer::es256("unused");
    let new = Signer::es256("unused");
    let a = proxy(
        &upstream.url,
        &[("GATEWAY_IDENTITY_KEY", old.private_pem.as_str())],
    )
    .await;
    let b = proxy(
        &upstream.url,
        &[("GATEWAY_IDENTITY_KEY", old.private_pem.as_str())],
    )
    .await;
    let (set_a, _) = jwks(&a, "/_keygate/.well-known/jwks.json").await;
    let (set_b, _) = jwks(&b, "/_keygate/.well-known/jwks.json").await;
    assert_eq!(set_a, set_b, "two replicas, one key, one JWKS");
    let token = format!("Bearer {}", hs256(&claims("user_rep")));
    a.get_with("/api/x", &[("Authorization", &token)]).await;
    let from_a = upstream
        .last()
        .header("x-auth-identity")
        .unwrap()
        .to_string();
    b.get_with("/api/x", &[("Authorization", &token)]).await;
    let from_b = upstream
        .last()
        .header("x-auth-identity")
        .unwrap()
        .to_string();
    // Each verifies with the other's JWKS.
    assert_eq!(verify(&from_a, &set_b, &upstream.url)["sub"], "user_rep");
    assert_eq!(verify(&from_b, &set_a, &upstream.url)["sub"], "user_rep");

    // The rotation: the new key signs, the old one (its public half) stays published,
    // so identities minted before the switch still verify.
    let c = rotated(&upstream.url, &new, &old.public_pem).await;
    let (set_c, _) = jwks(&c, "/_keygate/.well-known/jwks.json").await;
    assert_eq!(set_c.keys.len(), 2);
    let kids: Vec<_> = set_c
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert!(kids.contains(set_a.keys[0].common.key_id.as_ref().unwrap()));
    c.get_with("/api/x", &[("Authorization", &token)]).await;
    let from_c = upstream
        .last()
        .header("x-auth-identity")
        .unwrap()
        .to_string();
    let kid_c = jsonwebtoken::decode_header(&from_c).unwrap().kid.unwrap();
    assert_ne!(Some(&kid_c), set_a.keys[0].common.key_id.as_ref());
    assert_eq!(verify(&from_c, &set_c, &upstream.url)["sub"], "user_rep");
    assert_eq!(verify(&from_a, &set_c, &upstream.url)["sub"], "user_rep");
    // The previous key given as its private PEM publishes the same public key.
    let d = rotated(&upstream.url, &new, &old.private_pem).await;
    assert_eq!(jwks(&d, "/_keygate/.well-known/jwks.json").await.0, set_c);
}

async fn rotated(upstream: &str, key: &Signer, previous: &str) -> TestApp {
    proxy(
        upstream,
        &[
            ("GATEWAY_IDENTITY_KEY", key.private_pem.as_str()),
            ("GATEWAY_IDENTITY_KEY_PREVIOUS", previous),
        ],
    )
    .await
}

#[actix_rt::test]
async fn without_a_key_one_is_made_at_start() {
    let upstream = TestUpstream::start().await;
    let app = proxy(&upstream.url, &[]).await;
    let (set, _) = jwks(&app, "/_keygate/.well-known/jwks.json").await;
    let token = format!("Bearer {}", hs256(&claims("user_gen")));
    app.get_with("/api/x", &[("Authorization", &token)]).await;
    let identity = upstream
        .last()
        .header("x-auth-identity")
        .unwrap()
        .to_string();
    assert_eq!(verify(&identity, &set, &upstream.url)["sub"], "user_gen");
    // Off, nothing is signed and nothing is published.
    let plain = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("UPSTREAM_URL", upstream.url.as_str()),
    ])
    .await;
    plain.get_with("/api/x", &[("Authorization", &token)]).await;
    assert!(upstream.last().header("x-auth-identity").is_none());
    let res = send(client().get(format!("{}/_keygate/.well-known/jwks.json", plain.base))).await;
    // Not keygate's: an upstream path like any other, refused without a token.
    assert_eq!(res.status, 401);
}

#[actix_rt::test]
async fn keys_that_cannot_sign_stop_the_start() {
    let es = Signer::es256("unused");
    let rsa = Signer::rs256(0, "unused");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("GATEWAY_IDENTITY_KEY", "not a key")],
            "GATEWAY_IDENTITY_KEY",
        ),
        (
            vec![("GATEWAY_IDENTITY_KEY", es.public_pem.as_str())],
            "GATEWAY_IDENTITY_KEY",
        ),
        (
            vec![("GATEWAY_IDENTITY_KEY", rsa.private_pem.as_str())],
            "GATEWAY_IDENTITY_KEY",
        ),
        (
            vec![
                ("GATEWAY_IDENTITY_KEY", es.private_pem.as_str()),
                (
                    "GATEWAY_IDENTITY_KEY_PREVIOUS",
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                ),
            ],
            "GATEWAY_IDENTITY_KEY_PREVIOUS",
        ),
    ];
    for (extra, var) in cases {
        let mut vars = vec![
            ("JWT_SECRET", SECRET),
            ("UPSTREAM_URL", "http://127.0.0.1:9"),
            ("GATEWAY_IDENTITY_TOKEN", "true"),
        ];
        vars.extend(extra);
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = keygate::server::Config::from_lookup(|k| map.get(k).cloned())
            .err()
            .unwrap_or_else(|| panic!("{var}: started"));
        assert_eq!(e.var, var, "{}", e.problem);
    }
    // The binary: exit 2 naming the variable, the audience required in forward auth.
    let (code, _, stderr) = run_keygate(
        &["serve"],
        &[("JWT_SECRET", SECRET), ("GATEWAY_IDENTITY_TOKEN", "true")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("GATEWAY_IDENTITY_AUDIENCE"), "{stderr}");
    let (code, _, stderr) = run_keygate(
        &["serve"],
        &[
            ("JWT_SECRET", SECRET),
            ("UPSTREAM_URL", "http://127.0.0.1:9"),
            ("GATEWAY_IDENTITY_TOKEN", "true"),
            ("GATEWAY_IDENTITY_KEY", es.public_pem.as_str()),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("GATEWAY_IDENTITY_KEY"), "{stderr}");
}

#[actix_rt::test]
async fn a_websocket_handshake_carries_the_identity() {
    use futures_util::SinkExt as _;
    let upstream = TestUpstream::start().await;
    let app = proxy(&upstream.url, &[]).await;
    let (set, _) = jwks(&app, "/_keygate/.well-known/jwks.json").await;
    let token = format!("Bearer {}", hs256(&claims("user_wsid")));
    let (response, mut socket) = client()
        .ws(format!("{}/ws", app.base.replacen("http", "ws", 1)))
        .set_header("Authorization", token.as_str())
        .set_header("X-Auth-Identity", "forged")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let seen = upstream.last();
    let identities = seen.all("x-auth-identity");
    assert_eq!(identities.len(), 1, "{identities:?}");
    assert_eq!(
        verify(identities[0], &set, &upstream.url)["sub"],
        "user_wsid"
    );
    socket.send(awc::ws::Message::Close(None)).await.unwrap();
}
