//! The library core embedded in an application: an authenticator from the builder with
//! a JWKS served over HTTP, answers 200, 401 and 403 through the app's own routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate::Authenticator;
use serde_json::{Value, json};

fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// An RSA key, its JWKS with `kid` "k1", served on a random port.
fn mock_jwks() -> (EncodingKey, String) {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!("k1");
    jwk["use"] = json!("sig");
    let body = json!({ "keys": [jwk] });
    let (listener, base) = listener();
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/.well-known/jwks.json",
            web::get().to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().json(body) }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);
    (key, format!("{base}/.well-known/jwks.json"))
}

fn token(key: &EncodingKey, extra: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "sub": "user_1", "sid": "sess_1", "iss": "https://issuer.test",
        "iat": now, "nbf": now, "exp": now + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = awc::Client::default().get(format!("{base}{path}"));
    if let Some(token) = token {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut res = req.send().await.unwrap();
    let body = res.body().await.unwrap();
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_rt::test]
async fn an_embedding_app_answers_200_401_and_403() {
    let (key, jwks_url) = mock_jwks();
    let authenticator = Authenticator::builder()
        .jwks_url(jwks_url)
        .issuers(["https://issuer.test"])
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), authenticator.ready())
        .await
        .expect("the JWKS was never loaded");
    let (listener, base) = listener();
    let app_auth = authenticator.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_auth.clone())
            .configure(keygate_consumer::routes)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);

    let member = token(&key, json!({"org_id": "org_1", "org_role": "member"}));
    let admin = token(&key, json!({"org_id": "org_1", "org_role": "admin"}));
    let foreign = token(&key, json!({"iss": "https://elsewhere.test"}));

    assert_eq!(
        get(&base, "/me", Some(&member)).await,
        (200, "user_1".into())
    );
    let (status, body) = get(&base, "/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"detail": "Not authenticated", "code": "missing_token"})
    );
    let (status, body) = get(&base, "/me", Some(&foreign)).await;
    assert_eq!((status, body.contains("invalid_issuer")), (401, true));
    let (status, body) = get(&base, "/admin", Some(&member)).await;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"detail": "Forbidden", "code": "insufficient_permission"})
    );
    assert_eq!(
        get(&base, "/admin", Some(&admin)).await,
        (200, "admin".into())
    );

    // The same handle verifies tokens that do not come from a request.
    assert_eq!(
        authenticator.verify(&member).await.unwrap().user_id(),
        "user_1"
    );
}
