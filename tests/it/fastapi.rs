//! The tutorial's FastAPI backend (`examples/fastapi`), its JWT code removed, behind
//! keygate's reverse proxy: it answers `{"message": "Hello, user <id>"}` from
//! `X-Auth-User-Id`, and a request without a token never reaches it. With
//! `KEYGATE_REQUIRE_IDENTITY=true` it verifies keygate's signed `X-Auth-Identity` with
//! PyJWT's `PyJWKClient` against keygate's JWKS, and refuses whatever lacks one —
//! requests that bypass keygate with forged headers included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::process::free_port;
use crate::common::*;

struct Uvicorn(Child);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fastapi")
}

/// The example under uvicorn on `port` with `env`, once it accepts connections; `None`
/// (after the skip notice) without the virtual environment.
async fn uvicorn(port: u16, env: &[(&str, &str)], test: &str) -> Option<Uvicorn> {
    let python = example_dir().join(".venv/bin/python");
    if !python.exists() {
        skip_without("examples/fastapi/.venv (run .ci/setup)", test);
        return None;
    }
    let child = Command::new(&python)
        .args(["-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--app-dir")
        .arg(example_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let uvicorn = Uvicorn(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "uvicorn did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(uvicorn)
}

#[actix_rt::test]
async fn the_fastapi_example_behind_the_proxy() {
    let port = free_port();
    let Some(_uvicorn) = uvicorn(port, &[], "the_fastapi_example_behind_the_proxy").await else {
        return;
    };

    let upstream = format!("http://127.0.0.1:{port}");
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("UPSTREAM_URL", &upstream),
        ("GATEWAY_PUBLIC_PATHS", "/public(.*)"),
    ])
    .await;
    let token = hs256(&claims("user_2fastapi"));

    let hello = app.get("/protected", Some(&token)).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.body, json!({"message": "Hello, user user_2fastapi"}));
    let me = app
        .get_with(
            "/api/me",
            &[
                ("Authorization", format!("Bearer {token}").as_str()),
                ("X-Auth-Org-Role", "org:admin"),
            ],
        )
        .await;
    assert_eq!(me.body["user_id"], "user_2fastapi");
    assert_eq!(me.body["session_id"], "sess_user_2fastapi");
    assert_eq!(
        me.body["org_role"],
        json!(null),
        "a spoofed role reached the app"
    );

    // keygate answers for the app: no token, no request to it.
    let refused = app
        .get_with("/protected", &[("X-Auth-User-Id", "user_evil")])
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body,
        json!({"detail": "Not authenticated", "code": "missing_token"})
    );
    assert_eq!(
        app.get("/public/health", None).await.body,
        json!({"status": "ok"})
    );
}

#[actix_rt::test]
async fn the_fastapi_example_verifies_the_signed_identity_with_pyjwt() {
    let test = "the_fastapi_example_verifies_the_signed_identity_with_pyjwt";
    // keygate first (it needs the app's address, not the app itself), then the app
    // pointed at keygate's JWKS.
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let key = Signer::es256("unused");
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("UPSTREAM_URL", &upstream),
        ("GATEWAY_PUBLIC_PATHS", "/public(.*)"),
        ("GATEWAY_IDENTITY_TOKEN", "true"),
        ("GATEWAY_IDENTITY_KEY", key.private_pem.as_str()),
    ])
    .await;
    let jwks = format!("{}/_keygate/.well-known/jwks.json", app.base);
    let env = [
        ("KEYGATE_REQUIRE_IDENTITY", "true"),
        ("KEYGATE_JWKS_URL", jwks.as_str()),
        ("KEYGATE_AUDIENCE", upstream.as_str()),
    ];
    let Some(_uvicorn) = uvicorn(port, &env, test).await else {
        return;
    };
    let mut c = claims("user_2signed");
    c["org_id"] = json!("org_9");
    c["org_role"] = json!("org:admin");
    let token = hs256(&c);

    let hello = app.get("/protected", Some(&token)).await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
    assert_eq!(hello.body, json!({"message": "Hello, user user_2signed"}));
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(
        me.body,
        json!({"user_id": "user_2signed", "session_id": "sess_user_2signed", "org_id": "org_9", "org_role": "org:admin"})
    );

    // Straight to the app, around keygate: forged headers, a forged identity signed
    // with another key, an identity for another audience — all refused.
    let direct = |path: &str| crate::common::app::client().get(format!("{upstream}{path}"));
    let forged_headers = crate::common::app::send(
        direct("/protected").insert_header(("X-Auth-User-Id", "user_evil")),
    )
    .await;
    assert_eq!(forged_headers.status, 401, "{:?}", forged_headers.body);
    let mut forged = claims("user_evil");
    forged["iss"] = json!("keygate");
    forged["aud"] = json!(upstream.as_str());
    let other_key = Signer::es256("kid-of-another-key");
    let forged = other_key.sign(&forged);
    let forged_identity = crate::common::app::send(
        direct("/protected").insert_header(("X-Auth-Identity", forged.as_str())),
    )
    .await;
    assert_eq!(forged_identity.status, 401, "{:?}", forged_identity.body);
    // Through a keygate that does not sign: the headers alone are not enough.
    let unsigned = spawn_app(&[("JWT_SECRET", SECRET), ("UPSTREAM_URL", &upstream)]).await;
    let refused = unsigned.get("/protected", Some(&token)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, json!({"detail": "Not authenticated"}));
    assert_eq!(
        app.get("/public/health", None).await.body,
        json!({"status": "ok"})
    );
}
