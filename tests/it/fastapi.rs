//! The tutorial's FastAPI backend (`examples/fastapi`), its JWT code removed, behind
//! keygate's reverse proxy: it answers `{"message": "Hello, user <id>"}` from
//! `X-Auth-User-Id`, and a request without a token never reaches it.

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

#[actix_rt::test]
async fn the_fastapi_example_behind_the_proxy() {
    let python = example_dir().join(".venv/bin/python");
    if !python.exists() {
        skip_without(
            "examples/fastapi/.venv (run .ci/setup)",
            "the_fastapi_example_behind_the_proxy",
        );
        return;
    }
    let port = free_port();
    let child = Command::new(&python)
        .args(["-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--app-dir")
        .arg(example_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _uvicorn = Uvicorn(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "uvicorn did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
