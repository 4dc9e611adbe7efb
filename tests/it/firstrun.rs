//! A first run: configurations that cannot verify a single token stop the start,
//! `keygate migrate` needs only `DATABASE_URL`, a database that cannot be opened is
//! named, a rejected token says why (`keygate verify` and the debug log), a JWKS that
//! never answers costs a request at most a second (and a wrong one is named with its
//! status), a token without `Bearer` says so, `keygate verify` finds a running
//! `keygate dev`, `/me` has one shape, and
//! `keygate --help` points to the reference.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::poll::{SETTLE, poll_until};
use crate::common::*;

/// The `JWT_SECRET` line of `.env.example`, as a user who copies the file gets it.
fn placeholder_secret() -> &'static str {
    include_str!("../../.env.example")
        .lines()
        .find_map(|line| line.trim_start_matches('#').strip_prefix("JWT_SECRET="))
        .expect(".env.example has a JWT_SECRET line")
        .trim()
}

/// Runs `keygate serve` with `vars` and checks the refusal: exit 2, one stderr line
/// naming every variable of `names`, none of `hidden` repeated, no panic.
fn assert_refused(vars: &[(&str, &str)], names: &[&str], hidden: &[&str]) -> String {
    let (code, stdout, stderr) = run_keygate(&["serve"], vars);
    let what = names.join(", ");
    assert_eq!(code, 2, "{what}: {stderr}");
    assert!(stdout.is_empty(), "{what}: {stdout}");
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "{what}: {stderr}");
    assert!(line.starts_with("keygate: configuration error: "), "{line}");
    for name in names {
        assert!(
            line.contains(name),
            "{what}: the line does not name {name}: {line}"
        );
    }
    for secret in hidden {
        assert!(
            !line.contains(secret),
            "{what}: the line repeats a secret: {line}"
        );
    }
    assert!(!line.contains("panicked"), "{line}");
    line.to_string()
}

#[test]
fn firstrun_configurations_that_cannot_verify_a_token_stop_the_start() {
    let rsa = Signer::rs256(0, "k1");
    // A line of the private key's base64, which must never be printed.
    let private_body = rsa.private_pem.lines().nth(1).unwrap().to_string();

    let line = assert_refused(
        &[("JWT_PUBLIC_KEY", &rsa.private_pem)],
        &["JWT_PUBLIC_KEY", "private key"],
        &[&private_body],
    );
    println!("{line}");
    // The same key pasted on one line, with literal \n, as .env files often carry it.
    let one_line = rsa.private_pem.replace('\n', "\\n");
    assert_refused(
        &[("CLERK_JWT_KEY", &one_line)],
        &["CLERK_JWT_KEY", "private key"],
        &[&private_body],
    );

    let line = assert_refused(
        &[("JWT_ALGORITHMS", "RS256"), ("JWT_SECRET", SECRET)],
        &["JWT_ALGORITHMS", "JWT_SECRET"],
        &[SECRET],
    );
    println!("{line}");

    let line = assert_refused(
        &[
            ("JWT_ALGORITHMS", "ES256"),
            ("JWT_PUBLIC_KEY", &rsa.public_pem),
        ],
        &["JWT_ALGORITHMS", "JWT_PUBLIC_KEY", "RSA", "ES256"],
        &[],
    );
    println!("{line}");

    let line = assert_refused(
        &[
            ("JWT_ALGORITHMS", "hs256"),
            ("JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ],
        &["JWT_ALGORITHMS", "JWT_SECRET"],
        &[],
    );
    println!("{line}");

    let placeholder = placeholder_secret();
    assert!(placeholder.len() >= 32, "{placeholder}");
    let line = assert_refused(
        &[("JWT_SECRET", placeholder)],
        &["JWT_SECRET", ".env.example"],
        &[placeholder],
    );
    println!("{line}");

    let line = assert_refused(
        &[("JWT_SECRET", SECRET), ("RUST_LOG", "!!!")],
        &["RUST_LOG"],
        &[SECRET],
    );
    println!("{line}");
}

#[test]
fn firstrun_algorithm_names_are_accepted_in_any_case() {
    let token = hs256(&claims("user_case"));
    for list in ["hs256", "Hs256, rs256"] {
        let vars = [
            ("JWT_SECRET", SECRET),
            ("JWT_ALGORITHMS", list),
            ("JWKS_URL", "http://127.0.0.1:9/jwks.json"),
            ("JWKS_TIMEOUT_SECS", "1"),
        ];
        let vars = if list == "hs256" {
            &vars[..2]
        } else {
            &vars[..]
        };
        let (code, stdout, stderr) = run_keygate(&["verify", &token], vars);
        assert_eq!(code, 0, "JWT_ALGORITHMS={list}: {stderr}");
        let printed: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(printed["sub"], "user_case");
    }
}

#[test]
fn firstrun_migrate_needs_only_database_url() {
    let url = crate::common::app::temp_sqlite_url();
    // An unrelated, unusable verification setup does not concern migrations.
    let (code, stdout, stderr) = run_keygate(
        &["migrate"],
        &[
            ("DATABASE_URL", &url),
            ("JWT_SECRET", "short"),
            ("JWT_ALGORITHMS", "RS256"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("migrations applied to "), "{stdout}");
}

#[test]
fn firstrun_a_database_that_cannot_be_opened_is_named() {
    let sqlite = "sqlite:///nonexistent-dir/x.db?mode=rwc";
    let postgres = "postgres://user:secret@127.0.0.1:1/db";
    for command in ["migrate", "serve"] {
        let vars = [("DATABASE_URL", sqlite), ("JWT_SECRET", SECRET)];
        let (code, _, stderr) = run_keygate(&[command], &vars);
        assert_eq!(code, 1, "{command}: {stderr}");
        let line = stderr.trim();
        assert_eq!(line.lines().count(), 1, "{command}: {stderr}");
        assert!(
            line.contains("DATABASE_URL")
                && line.contains("/nonexistent-dir/x.db")
                && line.contains("the directory /nonexistent-dir does not exist"),
            "{command}: {line}"
        );
        println!("{line}");

        let vars = [("DATABASE_URL", postgres), ("JWT_SECRET", SECRET)];
        let (code, _, stderr) = run_keygate(&[command], &vars);
        assert_eq!(code, 1, "{command}: {stderr}");
        let line = stderr.trim();
        assert_eq!(line.lines().count(), 1, "{command}: {stderr}");
        assert!(
            line.contains("DATABASE_URL") && line.contains("postgres://user:***@127.0.0.1:1/db"),
            "{command}: {line}"
        );
        assert!(!line.contains("secret"), "{command}: the password: {line}");
        println!("{line}");
    }
}

/// `keygate verify TOKEN` with `vars`, expected to refuse: exit 1, nothing on stdout,
/// one stderr line starting with the code; returns that line.
fn refusal(token: &str, vars: &[(&str, &str)], code: &str) -> String {
    let (exit, stdout, stderr) = run_keygate(&["verify", token], vars);
    assert_eq!(exit, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "{stderr}");
    assert!(
        line.starts_with(&format!("keygate: {code} (")),
        "expected {code}: {line}"
    );
    assert!(!line.contains(token), "the token is printed: {line}");
    println!("{line}");
    line.to_string()
}

#[test]
fn firstrun_verify_names_the_missing_claim() {
    let mut no_sub = claims("x");
    no_sub.as_object_mut().unwrap().remove("sub");
    let line = refusal(&hs256(&no_sub), &[("JWT_SECRET", SECRET)], "missing_claim");
    assert!(
        line.ends_with(
            "expected a non-empty string user claim \"sub\" (JWT_USER_CLAIM), the token has none"
        ),
        "{line}"
    );

    let mut no_exp = claims("x");
    no_exp.as_object_mut().unwrap().remove("exp");
    let line = refusal(&hs256(&no_exp), &[("JWT_SECRET", SECRET)], "missing_claim");
    assert!(line.ends_with("the token has no exp claim"), "{line}");
}

#[test]
fn firstrun_verify_shows_the_allowed_values_against_the_tokens() {
    // claims(): iss https://issuer.test, azp http://localhost:3000, no aud.
    let token = hs256(&claims("user_policy"));
    let line = refusal(
        &token,
        &[
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", "https://a.test, https://b.test"),
        ],
        "invalid_issuer",
    );
    assert!(
        line.ends_with(
            "expected iss in [https://a.test, https://b.test] (JWT_ISSUER), the token has \"https://issuer.test\""
        ),
        "{line}"
    );

    let line = refusal(
        &token,
        &[("JWT_SECRET", SECRET), ("JWT_AUDIENCE", "api-1,api-2")],
        "invalid_audience",
    );
    assert!(
        line.ends_with(
            "expected aud to contain one of [api-1, api-2] (JWT_AUDIENCE), the token has none"
        ),
        "{line}"
    );

    let line = refusal(
        &token,
        &[
            ("JWT_SECRET", SECRET),
            ("JWT_AUTHORIZED_PARTIES", "https://app.test"),
        ],
        "unauthorized_party",
    );
    assert!(
        line.contains("expected azp in [https://app.test]")
            && line.ends_with("the token has \"http://localhost:3000\""),
        "{line}"
    );
}

#[test]
fn firstrun_verify_shows_the_allowed_algorithms_against_the_tokens() {
    let token = hs256(&claims("user_alg"));
    let line = refusal(
        &token,
        &[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "hs384,HS512")],
        "algorithm_not_allowed",
    );
    assert!(
        line.ends_with("expected alg in [HS384, HS512] (JWT_ALGORITHMS), the token has \"HS256\""),
        "{line}"
    );
}

#[actix_rt::test]
async fn firstrun_verify_shows_the_known_kids() {
    let jwks = MockJwks::start(vec![
        Signer::rs256(0, "kid-a").jwk(),
        Signer::rs256(1, "kid-b").jwk(),
    ])
    .await;
    let token = Signer::rs256(2, "kid-unknown").sign(&claims("user_kid"));
    let url = jwks.url.clone();
    let line = actix_rt::task::spawn_blocking(move || {
        refusal(&token, &[("JWKS_URL", &url)], "unknown_key")
    })
    .await
    .unwrap();
    assert!(
        line.ends_with("no JWKS key has kid \"kid-unknown\"; known kids: [kid-a, kid-b]"),
        "{line}"
    );
}

#[test]
fn firstrun_verify_accepts_a_leading_bearer() {
    let token = hs256(&claims("user_bearer"));
    for arg in [format!("Bearer {token}"), format!("bearer  {token}")] {
        let (code, stdout, stderr) = run_keygate(&["verify", &arg], &[("JWT_SECRET", SECRET)]);
        assert_eq!(code, 0, "{stderr}");
        let printed: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(printed["sub"], "user_bearer");
    }
}

#[actix_rt::test]
async fn firstrun_a_rejected_request_logs_the_verify_line_at_debug_with_its_request_id() {
    let vars = [
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "https://a.test"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ];
    let token = hs256(&claims("user_logged"));
    let process = spawn_keygate(&["serve"], &vars);
    process.wait_healthy().await;
    let res = awc::Client::default()
        .get(format!("{}/protected", process.base))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("X-Request-Id", "diagnose-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let mut lines = Vec::new();
    assert!(
        eventually(SETTLE, async || {
            lines.extend(process.stderr_lines());
            lines.iter().any(|l| l.contains("token rejected"))
        })
        .await,
        "no rejection line in {lines:?}"
    );
    let logged: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("token rejected"))
        })
        .unwrap();
    assert_eq!(logged["level"], "DEBUG", "{logged}");
    assert_eq!(logged["request_id"], "diagnose-1", "{logged}");
    assert_eq!(logged["code"], "invalid_issuer", "{logged}");
    for line in &lines {
        assert!(!line.contains(&token), "the token is in a log line: {line}");
    }

    // The same explanation as `keygate verify` prints for that token.
    let cli = refusal(&token, &vars[..2], "invalid_issuer");
    let reason = cli.split_once("): ").unwrap().1;
    assert_eq!(logged["message"], format!("token rejected: {reason}"));
}

/// A JWKS endpoint that accepts connections and answers none of them, unless told to
/// answer the next request with a key set.
struct SilentJwks {
    url: String,
    connections: Arc<AtomicUsize>,
    answer: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl SilentJwks {
    fn start() -> SilentJwks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let answer: Arc<Mutex<Option<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (count, next, stopped) = (connections.clone(), answer.clone(), stop.clone());
        std::thread::spawn(move || {
            // Held open, never written to, until the test ends.
            let mut silent: Vec<TcpStream> = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        match next.lock().unwrap().take() {
                            Some(body) => answer_with(stream, &body),
                            None => silent.push(stream),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentJwks {
            url,
            connections,
            answer,
            stop,
        }
    }

    fn answer_next_with(&self, keys: Value) {
        *self.answer.lock().unwrap() = Some(keys.to_string());
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for SilentJwks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request's head and answers `body` as JSON, closing the connection.
fn answer_with(mut stream: TcpStream, body: &str) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `GET path` with a bearer token and a client deadline of 3 s: a request that waited
/// for the hanging fetch (5 s) instead of at most 1 s fails here.
async fn get_within_3s(base: &str, path: &str, token: &str) -> (u16, Option<String>, Value) {
    let mut res = awc::Client::builder()
        .timeout(Duration::from_secs(3))
        .finish()
        .get(format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} got no answer within 3 s: {e}"));
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (res.status().as_u16(), retry_after, body)
}

#[actix_rt::test]
async fn firstrun_a_jwks_that_never_answers_costs_a_request_at_most_a_second() {
    let jwks = SilentJwks::start();
    let known = Signer::rs256(0, "kid-known");
    let process = spawn_keygate(
        &["serve"],
        &[
            ("JWKS_URL", &jwks.url),
            // Longer than a request may wait, so only MAX_REFRESH_WAIT can answer in time.
            ("JWKS_TIMEOUT_SECS", "5"),
            ("JWKS_REFRESH_SECS", "2"),
            ("JWKS_COOLDOWN_SECS", "0"),
        ],
    );
    process.wait_healthy().await;

    // The first fetch hangs: not ready, and a token is answered 503 at once.
    let readyz = awc::Client::default()
        .get(format!("{}/readyz", process.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(readyz, 503);
    let (status, retry_after, body) =
        get_within_3s(&process.base, "/protected", &known.sign(&claims("u1"))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        json!({"detail": "Signing keys unavailable", "code": "keys_unavailable"})
    );
    assert!(retry_after.is_some(), "no Retry-After");
    assert!(jwks.connections() >= 1, "the fetch never started");

    // The endpoint answers once: the keys load and the known kid passes.
    jwks.answer_next_with(json!({"keys": [known.jwk()]}));
    poll_until("the keys to load", Duration::from_secs(30), async || {
        awc::Client::default()
            .get(format!("{}/readyz", process.base))
            .send()
            .await
            .is_ok_and(|res| res.status() == 200)
    })
    .await;
    let (status, _, body) =
        get_within_3s(&process.base, "/protected", &known.sign(&claims("u2"))).await;
    assert_eq!(status, 200, "{body}");

    // Silent again: an unknown kid's refetch hangs, the request gets 503 in time, the
    // fetch goes on, and the process keeps serving the known key.
    let before = jwks.connections();
    let stranger = Signer::rs256(1, "kid-new").sign(&claims("u3"));
    for _ in 0..3 {
        let (status, _, body) = get_within_3s(&process.base, "/protected", &stranger).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "keys_unavailable");
    }
    assert!(jwks.connections() > before, "no refetch was attempted");
    let (status, _, body) =
        get_within_3s(&process.base, "/protected", &known.sign(&claims("u4"))).await;
    assert_eq!(status, 200, "{body}");
    let healthz = awc::Client::default()
        .get(format!("{}/healthz", process.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(healthz, 200);
}

#[actix_rt::test]
async fn firstrun_me_has_one_profile_shape_before_and_after_the_users_row() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let user = "user_first_call";
    let token = hs256(&claims(user));
    let unknown = json!({"email": null, "first_name": null, "last_name": null, "image_url": null});

    let first = app.get("/me", Some(&token)).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["profile"], unknown, "first call");

    // The just-in-time row lands off the request path; the next call reads it.
    let url = app.database_url.clone();
    poll_until("the user's row", SETTLE, async || {
        crate::common::db::last_seen(&url, user).await.is_some()
    })
    .await;
    let second = app.get("/me", Some(&token)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.body["profile"], unknown, "second call");
}

#[test]
fn firstrun_help_lists_the_commands_and_points_to_the_reference() {
    let (code, stdout, stderr) = run_keygate(&["--help"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for command in ["serve", "dev", "mint", "verify", "migrate"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "--help does not list {command}:\n{stdout}"
        );
    }
    assert!(stdout.contains("docs/reference.md"), "{stdout}");
}

#[actix_rt::test]
async fn firstrun_a_token_without_bearer_is_missing_token_and_the_log_says_why() {
    let vars = [
        ("JWT_SECRET", SECRET),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ];
    let token = hs256(&claims("user_no_scheme"));
    let process = spawn_keygate(&["serve"], &vars);
    process.wait_healthy().await;
    let mut res = awc::Client::default()
        .get(format!("{}/protected", process.base))
        .insert_header(("Authorization", token.clone()))
        .insert_header(("X-Request-Id", "no-scheme-1"))
        .send()
        .await
        .unwrap();
    // The answer is the contract's: exactly that of a request without a token.
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "Not authenticated", "code": "missing_token"})
    );

    let mut lines = Vec::new();
    assert!(
        eventually(SETTLE, async || {
            lines.extend(process.stderr_lines());
            lines.iter().any(|l| l.contains("token rejected"))
        })
        .await,
        "no rejection line in {lines:?}"
    );
    let logged: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "no-scheme-1")
        .unwrap();
    assert_eq!(logged["code"], "missing_token", "{logged}");
    let message = logged["message"].as_str().unwrap();
    assert!(
        message.contains("the Authorization header has no Bearer scheme"),
        "{message}"
    );
    for line in &lines {
        assert!(!line.contains(&token), "the token is in a log line: {line}");
    }

    // `keygate verify` reads a copied header the same way, and says the same.
    let line = refusal(
        &format!("Authorization: {token}"),
        &[("JWT_SECRET", SECRET)],
        "missing_token",
    );
    assert!(
        line.contains("the Authorization header has no Bearer scheme: it holds a bare token"),
        "{line}"
    );
    let line = refusal(
        &format!("Token {token}"),
        &[("JWT_SECRET", SECRET)],
        "missing_token",
    );
    assert!(
        line.contains("no Bearer scheme (its scheme is \"Token\")"),
        "{line}"
    );
}

#[test]
fn firstrun_verify_calls_the_first_segment_the_jwt_header() {
    let line = refusal("e!!.e30.c2ln", &[("JWT_SECRET", SECRET)], "malformed_token");
    assert!(
        line.ends_with("the JWT header (first segment) is not base64url"),
        "{line}"
    );
    let line = refusal("e30.e!!.c2ln", &[("JWT_SECRET", SECRET)], "malformed_token");
    assert!(line.contains("the JWT "), "{line}");
}

/// `keygate verify TOKEN` with `vars`, expected to refuse with `code` after the
/// rotation actor's warnings: returns the last stderr line.
fn last_line_of_refusal(token: &str, vars: &[(&str, &str)], code: &str) -> String {
    let (exit, stdout, stderr) = run_keygate(&["verify", token], vars);
    assert_eq!(exit, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let line = stderr.trim().lines().last().unwrap_or_default();
    assert!(line.starts_with(&format!("keygate: {code} (")), "{stderr}");
    println!("{line}");
    line.to_string()
}

#[actix_rt::test]
async fn firstrun_a_wrong_jwks_url_is_named_with_its_status_in_the_last_line() {
    let jwks = MockJwks::start(vec![Signer::rs256(0, "k1").jwk()]).await;
    jwks.set_mode(Mode::Fail);
    let token = Signer::rs256(0, "k1").sign(&claims("user_wrong_url"));
    let url = jwks.url.clone();
    let line = actix_rt::task::spawn_blocking(move || {
        last_line_of_refusal(&token, &[("JWKS_URL", &url)], "keys_unavailable")
    })
    .await
    .unwrap();
    assert!(
        line.ends_with(&format!(
            "the last fetch of the JWKS at {} failed: HTTP status 500",
            jwks.url
        )),
        "{line}"
    );

    // Nothing listening: the connection error instead of a status.
    let closed = format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        crate::common::process::free_port()
    );
    let token = Signer::rs256(0, "k1").sign(&claims("user_closed"));
    let url = closed.clone();
    let line = actix_rt::task::spawn_blocking(move || {
        last_line_of_refusal(&token, &[("JWKS_URL", &url)], "keys_unavailable")
    })
    .await
    .unwrap();
    let last = format!("the last fetch of the JWKS at {closed} failed: request failed: ");
    assert!(line.contains(&last), "{line}");
}

#[test]
fn firstrun_verify_finds_a_running_keygate_dev() {
    let dev = crate::dev::DevProcess::start();
    let addr = dev.base.trim_start_matches("http://").to_string();
    let (code, stdout, stderr) = run_keygate(&["verify", &dev.token], &[("BIND_ADDR", &addr)]);
    assert_eq!(code, 0, "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["sub"], "user_dev");
    assert!(
        stderr.contains(&format!(
            "no key source is set; verifying with the running `keygate dev` ({}/dev/jwks.json)",
            dev.base
        )),
        "{stderr}"
    );
    drop(dev);

    // No dev issuer there: the usual configuration error, naming where it looked.
    let (code, stdout, stderr) = run_keygate(&["verify", "a.b.c"], &[("BIND_ADDR", &addr)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "{stderr}");
    assert!(
        line.starts_with("keygate: configuration error: JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET: no key source is set"),
        "{line}"
    );
    assert!(
        line.contains(&format!("http://{addr}/dev/jwks.json")),
        "{line}"
    );
}
