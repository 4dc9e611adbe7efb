//! What ops see: exit codes and messages, metrics, JSON logs, graceful shutdown, limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn configuration_errors_exit_2_with_one_line_naming_the_variable() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET"),
        (&[("JWT_SECRET", "short")], "JWT_SECRET"),
        (
            &[("JWT_SECRET", SECRET), ("JWKS_REFRESH_SECS", "0")],
            "JWKS_REFRESH_SECS",
        ),
        (
            &[("CLERK_PUBLISHABLE_KEY", "pk_test_@@@")],
            "CLERK_PUBLISHABLE_KEY",
        ),
    ];
    for (vars, var) in cases {
        let (code, _, stderr) = run_keygate(&["serve"], vars);
        assert_eq!(code, 2, "{vars:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("short"),
            "{stderr}"
        );
    }
    let (_, _, stderr) = run_keygate(&[], &[]);
    assert!(stderr.contains("keygate dev"), "{stderr}");
}

#[test]
fn verify_command_prints_claims_or_the_reason() {
    let token = hs256(&claims("cli-user"));
    let vars = [("JWT_SECRET", SECRET)];
    let (code, stdout, _) = run_keygate(&["verify", &token], &vars);
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["sub"], "cli-user");

    let mut expired = claims("cli-user");
    expired["exp"] = json!(now() - 100);
    let (code, stdout, stderr) = run_keygate(&["verify", &hs256(&expired)], &vars);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("keygate: token_expired (Token expired): exp ")
            && stderr.contains("+ leeway 5s is not after now"),
        "{stderr}"
    );
}

#[actix_rt::test]
async fn verify_command_fetches_the_jwks_like_the_service() {
    let signer = Signer::rs256(0, "cli");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let token = signer.sign(&claims("jwks-cli"));
    let url = jwks.url.clone();
    let (code, stdout, stderr) = actix_rt::task::spawn_blocking(move || {
        run_keygate(&["verify", &token], &[("JWKS_URL", &url)])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("jwks-cli"));
    assert_eq!(jwks.fetches(), 1);
}

#[actix_rt::test]
async fn metrics_expose_the_contract_names() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let token = hs256(&claims("m"));
    app.get("/protected", Some(&token)).await;
    app.get("/protected", Some(&token)).await;
    app.get("/protected", Some("nope")).await;

    let text = app.get_text("/metrics").await;

    for name in [
        "keygate_auth_total{result=\"ok\"} 2",
        "keygate_auth_total{result=\"malformed_token\"} 1",
        "keygate_jwks_fetch_total{outcome=\"ok\"}",
        "keygate_jwks_fetch_total{outcome=\"error\"}",
        "keygate_jwks_keys",
        "keygate_jwks_last_success_timestamp_seconds",
        "keygate_token_cache_hits_total 1",
        "keygate_token_cache_misses_total 2",
        "keygate_http_request_duration_seconds_bucket{method=\"GET\",route=\"/protected\",status=\"200\"",
        // Every request counted once, under its own labels.
        "keygate_http_request_duration_seconds_count{method=\"GET\",route=\"/protected\",status=\"200\"} 2",
        "keygate_http_request_duration_seconds_count{method=\"GET\",route=\"/protected\",status=\"401\"} 1",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

/// Every metric family the registry exposes is named in the reference: read from a
/// running instance's `/metrics`, not from the source.
#[actix_rt::test]
async fn the_reference_names_every_metric_the_registry_exposes() {
    let reference = include_str!("../../docs/reference.md");
    let secret = svix::secret();
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("CLERK_WEBHOOK_SECRET", &secret)]).await;
    // A request, so that the families labelled per request have a sample.
    app.get("/protected", Some(&hs256(&claims("m")))).await;
    let text = app.get_text("/metrics").await;
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(families.len() >= 12, "{families:?}");
    for name in families {
        assert!(name.starts_with("keygate_"), "{name}");
        assert!(reference.contains(name), "docs/reference.md lacks {name}");
    }
}

#[actix_rt::test]
async fn json_logs_are_one_object_a_line() {
    let process = spawn_keygate(
        &["serve"],
        &[
            ("JWT_SECRET", SECRET),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ],
    );
    process.wait_healthy().await;
    let token = hs256(&claims("logged"));
    awc::Client::default()
        .get(format!("{}/protected", process.base))
        .insert_header(("Authorization", "Bearer not.a.token"))
        .send()
        .await
        .unwrap();
    awc::Client::default()
        .get(format!("{}/protected", process.base))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    let mut lines = Vec::new();
    assert!(
        eventually(Duration::from_secs(10), async || {
            lines.extend(process.stderr_lines());
            lines.iter().any(|l| l.contains("token rejected"))
        })
        .await
    );
    for line in &lines {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(object["level"].is_string() && object["message"].is_string());
        assert!(
            !line.contains(&token) && !line.contains(SECRET),
            "secret or token in a log line"
        );
    }
}

#[actix_rt::test]
async fn sigterm_drains_with_readyz_503_and_exits_0() {
    for signal in ["TERM", "INT"] {
        let mut process = spawn_keygate(&["serve"], &[("JWT_SECRET", SECRET)]);
        process.wait_healthy().await;
        let client = awc::Client::default();
        assert_eq!(
            client
                .get(format!("{}/readyz", process.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        process.signal(signal);

        let mut saw_503 = false;
        for _ in 0..50 {
            match client.get(format!("{}/readyz", process.base)).send().await {
                Ok(res) if res.status() == 503 => {
                    saw_503 = true;
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => break,
            }
        }
        assert!(
            saw_503,
            "{signal}: /readyz never answered 503 while draining"
        );
        let status = actix_rt::task::spawn_blocking(move || {
            let status = process.wait_exit(Duration::from_secs(40));
            drop(process);
            status
        })
        .await
        .unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{signal}");
    }
}

#[actix_rt::test]
async fn oversized_headers_and_slow_clients_are_bounded() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let status = actix_rt::task::spawn_blocking(move || {
        // 200 KiB of headers: past actix's fixed 128 KiB header limit, refused, not buffered.
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let big = "a".repeat(200 * 1024);
        let _ = write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"
        );
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let oversized = response.lines().next().unwrap_or("").to_string();

        // A client that never finishes its headers is cut off by the request timeout.
        let mut slow = TcpStream::connect(&addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut buf = String::new();
        let closed = slow.read_to_string(&mut buf).is_ok();
        (oversized, closed, buf)
    })
    .await
    .unwrap();
    assert!(
        status.0.is_empty() || status.0.starts_with("HTTP/1.1 4"),
        "oversized headers got {:?}",
        status.0
    );
    assert!(status.1, "slow client was not disconnected");
    assert!(
        status.2.is_empty() || status.2.starts_with("HTTP/1.1 408"),
        "{}",
        status.2
    );
}

#[actix_rt::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    let mut process = spawn_keygate(
        &["serve"],
        &[
            ("JWKS_URL", &jwks.url),
            ("JWKS_TIMEOUT_SECS", "3"),
            ("JWKS_COOLDOWN_SECS", "0"),
        ],
    );
    process.wait_healthy().await;
    assert!(eventually(Duration::from_secs(10), async || jwks.fetches() >= 1).await);
    // An unknown kid makes the request wait for a JWKS fetch that hangs until its timeout.
    jwks.set_mode(Mode::Hang);
    let slow_token = Signer::rs256(1, "new-kid").sign(&claims("u"));
    let url = format!("{}/protected", process.base);
    let in_flight = actix_rt::spawn(async move {
        awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish()
            .get(url)
            .insert_header(("Authorization", format!("Bearer {slow_token}")))
            .send()
            .await
            .map(|res| res.status().as_u16())
    });
    assert!(
        eventually(Duration::from_secs(10), async || jwks.fetches() >= 2).await,
        "the refetch never started"
    );

    process.signal("TERM");

    // The request still gets its answer (the fetch timed out: 503), not a reset connection.
    assert_eq!(in_flight.await.unwrap().unwrap(), 503);
    let status = actix_rt::task::spawn_blocking(move || process.wait_exit(Duration::from_secs(40)))
        .await
        .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}
