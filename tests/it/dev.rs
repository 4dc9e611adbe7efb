//! `keygate dev` as a child process: the printed token and curl line, `POST /dev/token`,
//! the sign-in page in headless Chromium, and the refusal to run in production; and
//! `/dev` absent from the ordinary app.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::app::{client, send, temp_sqlite_url};
use crate::common::*;

/// How long a child may take to print its banner or to exit.
const DEADLINE: Duration = Duration::from_secs(60);

/// The `keygate` binary with none of the parent's keygate variables and a working
/// directory without a `.env`, so the developer's environment cannot leak in.
pub fn keygate_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keygate"));
    for var in keygate::config::env::VARIABLES
        .iter()
        .chain(keygate::server::SERVER_VARIABLES)
    {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

/// Waits for `child` to exit within [`DEADLINE`] (killing it otherwise) and collects
/// its output.
pub fn wait_output(child: Child) -> Output {
    wait_output_within(child, DEADLINE)
}

/// [`wait_output`] with another limit.
pub fn wait_output_within(mut child: Child, limit: Duration) -> Output {
    let stdout = Drained::start(child.stdout.take());
    let stderr = Drained::start(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the child did not exit within {limit:?}; stderr:\n{}",
                stderr.text()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.finish().into_bytes(),
        stderr: stderr.finish().into_bytes(),
    }
}

/// Runs `cmd` to completion within [`DEADLINE`].
pub fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child)
}

/// A pipe read to its end on a thread, line by line, so its text so far can be shown
/// when a test fails and the child can never block on a full pipe.
struct Drained {
    text: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drained {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Drained {
        let text = Arc::new(Mutex::new(String::new()));
        let reader = pipe.map(|pipe| {
            let sink = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut sink = sink.lock().unwrap();
                    sink.push_str(&line);
                    sink.push('\n');
                }
            })
        });
        Drained { text, reader }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// The whole text, once the pipe closed (bounded: a grandchild could hold it open).
    fn finish(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        self.text()
    }
}

/// The exit code and the lines of stderr, for the usage-error assertions.
pub fn code_and_stderr(output: &Output) -> (Option<i32>, Vec<String>) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        stderr.lines().map(String::from).collect(),
    )
}

/// A running `keygate dev`, killed when dropped.
pub struct DevProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, from the printed curl line.
    pub base: String,
    /// The token of the printed curl line.
    pub token: String,
    /// stdout up to and including the curl line.
    pub banner: String,
    stderr: Drained,
}

impl DevProcess {
    /// Starts `keygate dev` on port 0 with a fresh SQLite database and waits for its
    /// curl line.
    pub fn start() -> DevProcess {
        let mut child = keygate_cmd()
            .arg("dev")
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", temp_sqlite_url())
            .env("WORKERS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Drained::start(child.stderr.take());
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut banner = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(why) => {
                    let _ = child.kill();
                    let status = child.wait();
                    let what = match why {
                        mpsc::RecvTimeoutError::Timeout => format!("within {DEADLINE:?}"),
                        mpsc::RecvTimeoutError::Disconnected => format!("and ended ({status:?})"),
                    };
                    panic!(
                        "keygate dev printed no curl line {what}; stdout:\n{banner}\nstderr:\n{}",
                        stderr.text()
                    );
                }
            };
            banner.push_str(&line);
            banner.push('\n');
            if let Some((token, base)) = parse_curl_line(&line) {
                return DevProcess {
                    child,
                    base,
                    token,
                    banner,
                    stderr,
                };
            }
        }
    }

    /// The service's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// `POST /dev/token` with a raw body and a JSON content type.
    pub async fn post_token(&self, body: &str) -> (StatusCode, Value) {
        let mut res = client()
            .post(format!("{}/dev/token", self.base))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_string())
            .await
            .unwrap();
        let bytes = res.body().await.unwrap();
        (
            res.status(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = client().get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let reply = send(req).await;
        (reply.status, reply.body)
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -H "Authorization: Bearer <token>" http://<addr>/protected` → (token, base).
fn parse_curl_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("curl -H \"Authorization: Bearer ")?;
    let (token, url) = rest.split_once("\" ")?;
    let base = url.trim().strip_suffix("/protected")?;
    Some((token.to_string(), base.to_string()))
}

/// A token's header or payload as JSON.
fn part(token: &str, index: usize) -> Value {
    let raw = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

#[actix_rt::test]
async fn the_printed_token_and_curl_line_are_accepted() {
    let dev = DevProcess::start();

    let (status, body) = dev.get("/protected", Some(&dev.token)).await;

    assert_eq!(status, 200, "stderr:\n{}", dev.stderr());
    assert_eq!(body, json!({"message": "Hello, user user_dev"}));
    assert!(dev.banner.contains("DEVELOPMENT issuer"), "{}", dev.banner);
    assert!(dev.banner.contains("never use this in production"));
    let claims = part(&dev.token, 1);
    assert_eq!(claims["iss"], format!("{}/dev", dev.base));
    assert_eq!(claims["sub"], "user_dev");
    assert_eq!(claims["azp"], dev.base);
    assert!(claims["sid"].as_str().unwrap().starts_with("sess_"));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
    assert_eq!(claims["nbf"], claims["iat"]);
}

#[actix_rt::test]
async fn the_dev_jwks_is_what_the_service_fetched() {
    let dev = DevProcess::start();

    let (status, jwks) = dev.get("/dev/jwks.json", None).await;
    let (ready, _) = dev.get("/readyz", None).await;

    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], part(&dev.token, 0)["kid"]);
    assert_eq!(
        (&keys[0]["kty"], &keys[0]["use"], &keys[0]["alg"]),
        (&json!("RSA"), &json!("sig"), &json!("RS256"))
    );
    assert!(keys[0].get("d").is_none(), "the private key never leaves");
    assert_eq!(ready, 200, "the actor loaded the dev JWKS over HTTP");
}

#[actix_rt::test]
async fn dev_token_mints_accepted_tokens_with_overrides() {
    let dev = DevProcess::start();

    let (status, body) = dev
        .post_token(
            r#"{"sub": "user_42", "ttl_secs": 120, "claims": {"org_id": "org_1", "org_role": "admin"}}"#,
        )
        .await;

    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let claims = part(token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert!(claims["sid"].as_str().unwrap().starts_with("sess_"));
    assert_ne!(
        claims["sid"],
        part(&dev.token, 1)["sid"],
        "a new session each time"
    );
    let (status, greeting) = dev.get("/protected", Some(token)).await;
    assert_eq!(
        (status.as_u16(), greeting),
        (200, json!({"message": "Hello, user user_42"}))
    );
    let (status, me) = dev.get("/me", Some(token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["org"]["id"], "org_1");
    assert_eq!(me["org"]["role"], "org:admin");

    // Every field is optional; the defaults are user_dev for an hour.
    let (status, body) = dev.post_token("{}").await;
    assert_eq!(status, 200, "{body}");
    let claims = part(body["token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], "user_dev");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // The longest lifetime is one day.
    let (status, _) = dev.post_token(r#"{"ttl_secs": 86400}"#).await;
    assert_eq!(status, 200);

    // Claims override the standard ones, and the service still judges them.
    let (_, body) = dev
        .post_token(r#"{"claims": {"iss": "https://someone-else.example"}}"#)
        .await;
    let (status, rejected) = dev.get("/protected", body["token"].as_str()).await;
    assert_eq!(
        (status.as_u16(), &rejected["code"]),
        (401, &json!("invalid_issuer"))
    );
}

#[actix_rt::test]
async fn dev_token_answers_bad_requests_with_400() {
    let dev = DevProcess::start();

    for body in [
        "{bad",
        "",
        r#"{"ttl_secs": 0}"#,
        r#"{"ttl_secs": 86401}"#,
        r#"{"ttl_secs": -5}"#,
        r#"{"ttl_secs": "60"}"#,
        r#"{"sub": ""}"#,
        r#"{"sub": 42}"#,
        r#"{"claims": []}"#,
        r#"{"ttl": 60}"#,
    ] {
        let (status, reply) = dev.post_token(body).await;

        assert_eq!(status, 400, "{body} → {reply}");
        assert_eq!(reply["code"], "invalid_request", "{body}");
        assert!(!reply["detail"].as_str().unwrap().is_empty(), "{body}");
    }

    let mut res = client()
        .post(format!("{}/dev/token", dev.base))
        .send_body("{}")
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(
        (res.status().as_u16(), &reply["code"]),
        (400, &json!("invalid_request")),
        "a body without Content-Type: application/json"
    );
}

/// A dev token whose factor verification ages are `fva`.
async fn token_with_fva(dev: &DevProcess, fva: Value) -> String {
    let body = json!({"sub": "user_step", "claims": {"fva": fva}}).to_string();
    let (status, reply) = dev.post_token(&body).await;
    assert_eq!(status, 200, "{reply}");
    reply["token"].as_str().unwrap().to_string()
}

#[actix_rt::test]
async fn dev_step_up_answers_as_a_reverified_only_route() {
    let dev = DevProcess::start();
    let stale = token_with_fva(&dev, json!([30, -1])).await;
    let (status, body) = dev
        .get("/dev/step-up?reverification=strict", Some(&stale))
        .await;
    assert_eq!(
        (status.as_u16(), body),
        (
            403,
            json!({
                "detail": "Reverification required",
                "code": "reverification_required",
                "clerk_error": {
                    "type": "forbidden",
                    "reason": "reverification-error",
                    "metadata": {"reverification": "strict"}
                }
            })
        )
    );
    let (status, body) = dev
        .get(
            "/dev/step-up?level=first_factor&after_minutes=30",
            Some(&stale),
        )
        .await;
    assert_eq!(status, 403, "an age equal to the limit fails");
    assert_eq!(
        body["clerk_error"]["metadata"]["reverification"],
        json!({"level": "first_factor", "afterMinutes": 30})
    );
    let (status, body) = dev
        .get("/dev/step-up?reverification=lax", Some(&stale))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fva"], json!([30, -1]));

    let fresh = token_with_fva(&dev, json!([0, -1])).await;
    let (status, _) = dev
        .get("/dev/step-up?reverification=strict", Some(&fresh))
        .await;
    assert_eq!(status, 200);
    let (status, body) = dev
        .get("/dev/step-up?reverification=paranoid", Some(&fresh))
        .await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (400, &json!("invalid_request"))
    );
    let (status, body) = dev.get("/dev/step-up?reverification=strict", None).await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (401, &json!("missing_token"))
    );
}

#[actix_rt::test]
async fn dev_page_is_one_self_contained_html_file() {
    let dev = DevProcess::start();

    let mut res = client()
        .get(format!("{}/dev", dev.base))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();

    assert_eq!(res.status(), 200);
    let content_type = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for id in [
        "user-id",
        "sign-in",
        "token",
        "call-protected",
        "call-me",
        "org-id",
        "org-role",
        "org-permissions",
        "plans",
        "features",
        "fva-first",
        "fva-second",
        "reverification",
        "call-step-up",
        "hook-reading",
        "sign-out",
        "result-status",
        "result-body",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    // An empty icon, so no browser asks for a /favicon.ico that is not there.
    assert!(html.contains(r#"<link rel="icon" href="data:,">"#));
}

#[actix_rt::test]
async fn dev_routes_do_not_exist_under_serve() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;

    for path in [
        "/dev",
        "/dev/",
        "/dev/jwks.json",
        "/dev/token",
        "/dev/step-up",
    ] {
        assert_eq!(app.get(path, None).await.status, 404, "GET {path}");
    }
    let reply = send(
        client()
            .post(format!("{}/dev/token", app.base))
            .insert_header(("Content-Type", "application/json")),
    )
    .await;
    assert_eq!(reply.status, 404, "POST /dev/token");
}

#[test]
fn dev_refuses_to_start_in_production() {
    let mut cmd = keygate_cmd();
    cmd.arg("dev")
        .env("APP_ENV", "production")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", temp_sqlite_url());

    let output = run(cmd);

    let (code, stderr) = code_and_stderr(&output);
    assert_eq!(code, Some(2), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "one line: {stderr:?}");
    assert!(stderr[0].contains("APP_ENV=production"), "{stderr:?}");
    assert!(output.stdout.is_empty(), "no banner, no token");
}

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What the browser test lacks on this machine, if anything.
fn browser_prerequisites_missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("/usr/bin/chromium (apt-get install chromium)".to_string());
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s: ExitStatus| s.success()) {
        missing.push("node".to_string());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        missing.push("tests/browser/node_modules (npm install in tests/browser)".to_string());
    }
    missing
}

/// Whether a browser test can run here; when it cannot, it fails in CI (`.ci/setup`
/// installs everything, so a gap there is a failure) and is skipped with a notice locally.
pub fn browser_test_can_run(test: &str) -> bool {
    let missing = browser_prerequisites_missing();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !is_ci(),
        "the {test} cannot run in CI; missing: {}",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED {test}: missing {} (run `bash .ci/setup`)",
        missing.join(", ")
    );
    crate::common::record_skip(test, &missing.join(", "));
    false
}

#[test]
fn dev_page_signs_in_calls_protected_and_signs_out_in_chromium() {
    if !browser_test_can_run("dev page browser test") {
        return;
    }
    let dev = DevProcess::start();

    let child = Command::new("node")
        .arg("dev_page.mjs")
        .arg(&dev.base)
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Starting Chromium on a busy two-core machine can take a while.
    let output = wait_output_within(child, Duration::from_secs(150));

    assert!(
        output.status.success(),
        "browser test failed ({:?})\nstdout:\n{}\nstderr:\n{}\nkeygate stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        dev.stderr()
    );
}
