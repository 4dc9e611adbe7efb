//! The gateway as an attacker sees it: every way around keygate's decision that proxies
//! in the field have had to close, tried against the reverse proxy and `/auth`. Each
//! test asserts what the client got and what the recording upstream saw — nothing, for
//! a refusal.
//!
//! Classes: path confusion, header spellings and injection, identity values, upgrades
//! (the WebSocket relay's own test is here too), body framing, forward-auth header
//! games, resource limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::app::{Reply, client, send};
use crate::common::upstream::{Seen, TestUpstream};
use crate::common::*;

const RULES: &str = r#"
default = "authenticated"
[[rule]]
path = "/api/public(.*)"
access = "public"
[[rule]]
path = "/api/feed(.*)"
methods = ["POST"]
access = "public"
[[rule]]
path = "/api/admin(.*)"
org_role = "org:admin"
"#;

const ORIGIN: &str = "https://app.example.com";

fn rules_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("keygate-attack-{}.toml", rand::random::<u64>()));
    std::fs::write(&path, RULES).unwrap();
    path
}

async fn gateway(upstream: Option<&str>, extra: &[(&str, &str)]) -> TestApp {
    let rules = rules_file();
    let rules = rules.to_str().unwrap().to_string();
    let mut vars = vec![
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.as_str()),
        ("CORS_ALLOWED_ORIGINS", ORIGIN),
    ];
    if let Some(url) = upstream {
        vars.push(("UPSTREAM_URL", url));
    }
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

fn token_with(sub: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut c = claims(sub);
    edit(&mut c);
    format!("Bearer {}", hs256(&c))
}

fn member(role: &str) -> String {
    token_with("user_gw", |c| {
        c["org_id"] = json!("org_1");
        c["org_role"] = json!(role);
    })
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    app.get_with(path, headers).await
}

/// One answer read off a raw connection.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Sends `request` as it is written and reads one answer (its body by `Content-Length`,
/// else to the end of the connection), off the test's runtime so that the servers the
/// test started keep running.
async fn exchange(base: &str, request: &[u8]) -> Raw {
    let (base, request) = (base.to_string(), request.to_vec());
    actix_rt::task::spawn_blocking(move || exchange_blocking(&base, &request))
        .await
        .unwrap()
}

fn exchange_blocking(base: &str, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => panic!("no answer: {:?}", String::from_utf8_lossy(&received)),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = received[head_end..].to_vec();
    while length.is_none_or(|len| body.len() < len) && status != 101 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    Raw {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

/// The names of `seen`'s headers that a CGI server would read as `X-Auth-*`.
fn identity_spellings(seen: &Seen) -> Vec<String> {
    seen.headers
        .iter()
        .map(|(n, _)| n.replace('_', "-"))
        .filter(|n| n.starts_with("x-auth-"))
        .collect()
}

// --- path confusion ---------------------------------------------------------------------

#[actix_rt::test]
async fn disguised_dot_segments_are_refused_and_escapes_stay_as_they_came() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let plain = member("org:member");
    let admin = member("org:admin");
    // Each of these is /api/admin to Tomcat, Jetty or a server that decodes separators
    // before resolving dot segments, and /api/public/… to a naive matcher.
    for path in [
        "/api/public/..;/admin",
        "/api/public/..;jsessionid=x/admin",
        "/api/public/..%3b/admin",
        "/api/public/..%3B/admin",
        "/api/public/%2e%2e%3b/admin",
        "/api/public/.%2e;/admin",
        "/api/public/..%2fadmin",
        "/api/public/..%2Fadmin",
        "/api/public/..%5cadmin",
        "/api/public/x%2F..%2Fadmin",
        "/api/public/a%00",
    ] {
        for auth in ["", plain.as_str(), admin.as_str()] {
            let refused = get(&app, path, &[("Authorization", auth)]).await;
            assert_eq!(
                (refused.status.as_u16(), refused.code()),
                (400, "invalid_path"),
                "{path}"
            );
        }
    }
    assert_eq!(upstream.count(), 0, "{:?}", upstream.seen());

    // Escapes of reserved characters are neither decoded for the decision nor for the
    // upstream: the target arrives byte for byte.
    for path in [
        "/api/public/a%3Bb",
        "/api/public/a%3bb",
        "/api/public/%252e%252e/admin",
        "/api/public/a%2Fb",
        "/api/public/a;b=c",
    ] {
        let passed = get(&app, path, &[]).await;
        assert_eq!(passed.status, 200, "{path}");
        assert_eq!(upstream.last().target, path);
        assert!(upstream.last().identity_names().is_empty());
    }

    // Unreserved escapes are decoded before the decision: %61dmin is admin.
    let before = upstream.count();
    let denied = get(&app, "/api/%61dmin/x", &[("Authorization", &plain)]).await;
    assert_eq!(
        (denied.status.as_u16(), denied.code()),
        (403, "insufficient_permission")
    );
    assert_eq!(upstream.count(), before);
    let allowed = get(&app, "/api/%61dmin/x", &[("Authorization", &admin)]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(upstream.last().target, "/api/admin/x");

    // An absolute-form target is decided on its path, like any other.
    let absolute = exchange(
        &app.base,
        format!(
            "GET http://evil.example/api/admin/x HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {plain}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    ).await;
    assert_eq!(absolute.status, 403, "{}", absolute.body);
    assert_eq!(upstream.count(), before + 1);
}

#[actix_rt::test]
async fn a_guarded_path_is_guarded_in_every_case_and_with_a_trailing_slash() {
    // A default-public gateway guarding one path: routers that ignore case or a trailing
    // slash (Express, ASP.NET) would serve these as /api/admin, so the rule must too.
    let upstream = TestUpstream::start().await;
    let rules = std::env::temp_dir().join(format!("keygate-case-{}.toml", rand::random::<u64>()));
    std::fs::write(
        &rules,
        "default = \"public\"\n[[rule]]\npath = \"/api/admin\"\norg_role = \"org:admin\"\n",
    )
    .unwrap();
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.to_str().unwrap()),
        ("UPSTREAM_URL", &upstream.url),
    ])
    .await;
    for path in [
        "/api/admin",
        "/api/admin/",
        "/API/ADMIN",
        "/Api/Admin/",
        "/api/%41dmin",
    ] {
        let refused = get(&app, path, &[]).await;
        assert_eq!(refused.status, 401, "{path}");
    }
    assert_eq!(upstream.count(), 0, "{:?}", upstream.seen());
    let admin = member("org:admin");
    let allowed = get(&app, "/API/Admin/", &[("Authorization", &admin)]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(upstream.last().target, "/API/Admin/");
    assert_eq!(get(&app, "/api/other", &[]).await.status, 200);
}

// --- header spellings and injection -----------------------------------------------------

#[actix_rt::test]
async fn identity_headers_in_any_spelling_never_reach_the_upstream() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let spoofed = [
        ("X_Auth_User_Id", "admin"),
        ("x-auth_user-id", "admin"),
        ("X_AUTH_ORG_ROLE", "org:admin"),
        ("X-Auth-Org-Role", "org:admin"),
        ("x-auth-org-permissions", "org:all"),
        ("X_auth-Claims", "e30"),
        ("X-Auth-User-Id", "admin"),
    ];
    // Anonymous on a public route: no identity at all.
    let anonymous = get(&app, "/api/public/x", &spoofed).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(identity_spellings(&upstream.last()), Vec::<String>::new());
    // Authenticated: keygate's identity only, once.
    let token = member("org:member");
    let mut headers = spoofed.to_vec();
    headers.push(("Authorization", &token));
    let signed_in = get(&app, "/api/public/x", &headers).await;
    assert_eq!(signed_in.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.all("x-auth-user-id"), vec!["user_gw"]);
    assert_eq!(seen.all("x-auth-org-role"), vec!["org:member"]);
    assert!(seen.all("x-auth-org-permissions").is_empty());
    assert!(seen.all("x-auth-claims").is_empty());
    let mut names = identity_spellings(&seen);
    names.sort();
    assert_eq!(
        names,
        [
            "x-auth-org-id",
            "x-auth-org-role",
            "x-auth-session-id",
            "x-auth-token-type",
            "x-auth-user-id"
        ],
        "{:?}",
        seen.headers
    );
    assert!(
        seen.headers.iter().all(|(n, _)| !n.contains('_')),
        "{:?}",
        seen.headers
    );
}

#[actix_rt::test]
async fn routing_overrides_and_proxy_headers_cannot_be_forged() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let token = member("org:member");
    // Raw, so that the client's own Connection header goes out as written.
    let reply = exchange(
        &app.base,
        format!(
            "GET /api/public/x HTTP/1.1\r\nHost: gw.test\r\nAuthorization: {token}\r\n\
             X-Original-URL: /api/admin\r\nX-Rewrite-URL: /api/admin\r\n\
             X-HTTP-Method-Override: DELETE\r\nX_HTTP_Method: DELETE\r\nX-Method-Override: DELETE\r\n\
             Connection: close, X-Auth-User-Id, X-Forwarded-For\r\n\
             X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: gopher\r\n\
             X-Forwarded-For: 203.0.113.9\r\nX-Custom: kept\r\n\r\n"
        )
        .as_bytes(),
    ).await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("GET", "/api/public/x")
    );
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x_http_method",
        "x-http-method",
        "x-method-override",
    ] {
        assert!(seen.header(name).is_none(), "{name} reached the upstream");
    }
    assert_eq!(seen.all("x-auth-user-id"), vec!["user_gw"]);
    assert_eq!(seen.all("x-forwarded-for"), vec!["203.0.113.9, 127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-host"), vec!["gw.test"]);
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"]);
    assert_eq!(seen.all("x-custom"), vec!["kept"]);
}

// --- identity values --------------------------------------------------------------------

#[actix_rt::test]
async fn identity_values_a_header_cannot_carry_refuse_the_token() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let forward = gateway(None, &[]).await;
    let bad = [
        ("user\r\nX-Auth-Org-Role: org:admin", None),
        ("user\n", None),
        ("user\u{0}admin", None),
        ("user\tx", None),
        (" user_victim ", None),
        ("user_victim ", None),
        ("us\u{e9}r", None),
        (
            "user_ok",
            Some(("org_permissions", json!(["org:a:read,org:admin:all"]))),
        ),
        ("user_ok", Some(("org_role", json!("org:admin\r\n")))),
        ("user_ok", Some(("org_id", json!(" org_1")))),
        ("user_ok", Some(("sid", json!("sess_1\u{0}")))),
        (
            "user_ok",
            Some(("pla", json!("u:pro\r\nX-Auth-Org-Role: org:admin"))),
        ),
        ("user_ok", Some(("fea", json!(" o:export")))),
    ];
    for (sub, extra) in bad {
        let token = token_with(sub, |c| {
            if let Some((claim, value)) = extra.clone() {
                c[claim] = value;
                if claim != "org_id" && c.get("org_id").is_none() {
                    c["org_id"] = json!("org_1");
                }
            }
        });
        let what = format!("{sub:?} {extra:?}");
        let refused = get(&app, "/api/orders", &[("Authorization", &token)]).await;
        refused.assert_unauthorized("malformed_token", "Invalid token", &what);
        let refused = get(
            &forward,
            "/auth",
            &[("Authorization", &token), ("X-Original-URI", "/api/orders")],
        )
        .await;
        refused.assert_unauthorized("malformed_token", "Invalid token", &what);
        // On a public route the bad token is ignored: anonymous, no identity.
        let anonymous = get(&app, "/api/public/x", &[("Authorization", &token)]).await;
        assert_eq!(anonymous.status, 200, "{what}");
        assert_eq!(
            identity_spellings(&upstream.last()),
            Vec::<String>::new(),
            "{what}"
        );
    }
    assert!(upstream.seen().iter().all(|s| s.target == "/api/public/x"));

    // Inner spaces are visible ASCII a header carries as they are; plans and features
    // travel as their claims.
    let spaced = token_with("user a", |c| {
        c["pla"] = json!("u:free,o:pro");
        c["fea"] = json!("o:export,u:beta");
    });
    let allowed = get(&app, "/api/orders", &[("Authorization", &spaced)]).await;
    assert_eq!(allowed.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.all("x-auth-user-id"), vec!["user a"]);
    assert_eq!(seen.all("x-auth-plan"), vec!["u:free,o:pro"]);
    assert_eq!(seen.all("x-auth-features"), vec!["o:export,u:beta"]);
}

// --- upgrades ---------------------------------------------------------------------------

fn handshake(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[actix_rt::test]
async fn a_websocket_upgrade_is_a_get_or_nothing() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let token = member("org:member");
    // POST is public on /api/feed; GET (and so a handshake) is not.
    for (method, auth) in [
        ("POST", ""),
        ("PUT", token.as_str()),
        ("DELETE", token.as_str()),
    ] {
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!("Authorization: {auth}\r\n")
        };
        let refused = exchange(&app.base, &handshake(method, "/api/feed/ws", &auth)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_upgrade".into()),
            "{method}"
        );
    }
    assert_eq!(upstream.count(), 0, "{:?}", upstream.seen());
    // The same POST without the upgrade is an ordinary public request.
    let posted = app.post("/api/feed/x", &[], b"hi".to_vec()).await;
    assert_eq!(posted.status, 200);
    assert_eq!(upstream.last().method, "POST");

    // Forward auth refuses the same trick.
    let forward = gateway(None, &[]).await;
    let refused = get(
        &forward,
        "/auth",
        &[
            ("Upgrade", "websocket"),
            ("X-Original-Method", "POST"),
            ("X-Original-URI", "/api/feed/ws"),
        ],
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (400, "invalid_upgrade")
    );
}

#[actix_rt::test]
async fn a_handshake_is_forwarded_like_any_request() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let ws_url = format!("{}/ws", app.base.replacen("http", "ws", 1));

    let refused = exchange(&app.base, &handshake("GET", "/ws", "")).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(upstream.count(), 0);

    let token = member("org:member");
    let (response, mut socket) = client()
        .ws(ws_url)
        .origin(ORIGIN)
        .protocols(["chat"])
        .set_header("Authorization", token.as_str())
        .set_header("Cookie", "theme=dark")
        .set_header("X-Custom", "kept")
        .set_header("X_Auth_User_Id", "admin")
        .set_header("X-Auth-User-Id", "evil")
        .set_header("X-Request-Id", "ws-request-1")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let seen = upstream.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.all("origin"), vec![ORIGIN]);
    assert_eq!(seen.all("sec-websocket-protocol"), vec!["chat"]);
    assert_eq!(seen.all("cookie"), vec!["theme=dark"]);
    assert_eq!(seen.all("x-custom"), vec!["kept"]);
    assert_eq!(seen.all("x-request-id"), vec!["ws-request-1"]);
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"]);
    assert_eq!(seen.all("x-auth-user-id"), vec!["user_gw"]);
    assert!(
        seen.headers.iter().all(|(n, _)| !n.contains('_')),
        "{:?}",
        seen.headers
    );

    socket
        .send(awc::ws::Message::Text("hello".into()))
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame, awc::ws::Frame::Text("user_gw: hello".into()));
    socket.send(awc::ws::Message::Close(None)).await.unwrap();

    // An upstream that answers the handshake with something else: that answer, as it is.
    let answered = exchange(&app.base, &handshake("GET", "/api/public/no-socket", "")).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let body: Value = serde_json::from_str(&answered.body).unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["target"], "/api/public/no-socket");
    let teapot = exchange(
        &app.base,
        &handshake("GET", "/status/418", &format!("Authorization: {token}\r\n")),
    )
    .await;
    assert_eq!(teapot.status, 418);
}

// --- body framing -----------------------------------------------------------------------

/// keygate's own metric `sample` in proxy mode.
async fn own_metric(app: &TestApp, sample: &str) -> f64 {
    metric_value(&app.get_text("/_keygate/metrics").await, sample)
}

#[actix_rt::test]
async fn a_body_that_breaks_after_the_decision_is_the_clients_fault() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    let token = member("org:member");
    let decided = r#"keygate_auth_total{result="ok"}"#;
    for (round, (what, broken)) in [
        ("a chunk size that is not hex", "zz\r\nworld\r\n0\r\n\r\n"),
        (
            "a chunk size that overflows",
            "ffffffffffffffffffff\r\nworld\r\n0\r\n\r\n",
        ),
        (
            "more data than announced",
            "3\r\nworld and more\r\n0\r\n\r\n",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // The first chunk goes with the head; the rest only once keygate has decided
        // (its verified-token count went up), as an attacker would send it.
        let (base, head) = (
            app.base.clone(),
            format!(
                "POST /api/orders HTTP/1.1\r\nHost: gw.test\r\nAuthorization: {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n"
            ),
        );
        let mut stream = actix_rt::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while own_metric(&app, decided).await < (round + 1) as f64 {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: never decided"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let broken = broken.to_string();
        let answer = actix_rt::task::spawn_blocking(move || {
            stream.write_all(broken.as_bytes()).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).to_string()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(
            answer.contains(r#""code":"invalid_body""#),
            "{what}: {answer}"
        );
        // At most an aborted request: never the body as sent.
        assert!(
            upstream.seen().iter().all(|s| !s.body.ends_with(b"world")),
            "{what}: {:?}",
            upstream.seen()
        );
    }
    let sample = r#"keygate_upstream_requests_total{status="error"}"#;
    assert_eq!(own_metric(&app, sample).await, 0.0);
    let sample = r#"keygate_upstream_requests_total{status="5xx"}"#;
    assert_eq!(own_metric(&app, sample).await, 0.0);

    // Framing that is already broken when the head arrives never reaches the upstream;
    // actix-http closes such a connection without an answer.
    let before = upstream.count();
    let base = app.base.clone();
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"POST /api/public/upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nworld\r\n0\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    })
    .await
    .unwrap();
    assert!(!answer.contains(" 502 "), "{answer}");
    assert_eq!(upstream.count(), before, "{:?}", upstream.seen());
}

#[actix_rt::test]
async fn obfuscated_framing_is_refused_before_anything_is_forwarded() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[]).await;
    // Each is a way to make two servers disagree on where the body ends, and so smuggle
    // the request that follows past the rules (a GET of /api/admin, here).
    for framing in [
        "Transfer-Encoding: chunked, identity",
        "Transfer-Encoding: identity, chunked",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding : chunked",
        "Transfer-Encoding: chunked\r\n x",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: +5",
    ] {
        let request = format!(
            "POST /api/feed/x HTTP/1.1\r\nHost: gw.test\r\n{framing}\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /api/admin HTTP/1.1\r\nHost: gw.test\r\n\r\n"
        );
        let answer = exchange(&app.base, request.as_bytes()).await;
        assert_eq!(answer.status, 400, "{framing:?}: {}", answer.body);
    }
    assert_eq!(upstream.count(), 0, "{:?}", upstream.seen());
}

// --- forward-auth header games ----------------------------------------------------------

#[actix_rt::test]
async fn forward_auth_conventions_cannot_be_played_against_each_other() {
    let app = gateway(None, &[]).await;
    let conflict = json!({"detail": "Forbidden", "code": "conflicting_original_request"});
    // nginx names /api/admin; the client adds Traefik's header naming a public path.
    for (extra, what) in [
        (("X-Forwarded-Uri", "/api/public/x"), "path"),
        (("X-Forwarded-Method", "POST"), "method"),
    ] {
        let refused = get(
            &app,
            "/auth",
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/admin/x"),
                extra,
            ],
        )
        .await;
        assert_eq!(refused.status, 403, "{what}");
        assert_eq!(refused.body, conflict, "{what}");
    }
    // Envoy's path against a header.
    let refused = get(
        &app,
        "/auth/api/admin/x",
        &[("X-Forwarded-Uri", "/api/public/x")],
    )
    .await;
    assert_eq!(refused.body, conflict);
    // Conventions that agree decide as one.
    let agreed = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/admin/x?a=1"),
            ("X-Forwarded-Uri", "/api/admin/x"),
        ],
    )
    .await;
    assert_eq!(agreed.code(), "missing_token");

    // With the convention named, the others' headers are not read at all.
    let nginx = gateway(None, &[("FORWARD_AUTH_HEADERS", "x-original")]).await;
    let decided = get(
        &nginx,
        "/auth",
        &[
            ("X-Original-URI", "/api/admin/x"),
            ("X-Forwarded-Uri", "/api/public/x"),
        ],
    )
    .await;
    assert_eq!(decided.code(), "missing_token");
    let envoy = gateway(None, &[("FORWARD_AUTH_HEADERS", "envoy")]).await;
    let decided = get(
        &envoy,
        "/auth/api/admin/x",
        &[("X-Original-URI", "/api/public/x")],
    )
    .await;
    assert_eq!(decided.code(), "missing_token");
    let public = get(
        &envoy,
        "/auth/api/public/x",
        &[("X-Original-URI", "/api/admin/x")],
    )
    .await;
    assert_eq!(public.status, 200);

    let wrong = keygate::server::Config::from_lookup(|name| match name {
        "JWT_SECRET" => Some(SECRET.to_string()),
        "FORWARD_AUTH_HEADERS" => Some("traefik".to_string()),
        _ => None,
    });
    let message = wrong.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message
            .starts_with("FORWARD_AUTH_HEADERS: expected x-forwarded, x-original, envoy or auto"),
        "{message}"
    );
}

#[actix_rt::test]
async fn forward_auth_lets_only_allowed_preflights_through() {
    let app = gateway(None, &[]).await;
    let token = member("org:admin");
    let preflight = |origin: &'static str| {
        [
            ("X-Original-Method", "OPTIONS"),
            ("X-Original-URI", "/api/admin/x"),
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
        ]
    };
    let allowed = get(&app, "/auth", &preflight(ORIGIN)).await;
    assert_eq!(allowed.status, 200);
    let mut with_token = preflight(ORIGIN).to_vec();
    with_token.push(("Authorization", &token));
    let allowed = get(&app, "/auth", &with_token).await;
    assert_eq!(allowed.status, 200);
    assert!(
        allowed
            .headers
            .keys()
            .all(|n| !n.as_str().starts_with("x-auth-")),
        "a preflight carries no identity"
    );
    let foreign = get(&app, "/auth", &preflight("https://evil.example")).await;
    assert_eq!(foreign.status, 401);
    let no_method = get(&app, "/auth", &preflight(ORIGIN)[..3]).await;
    assert_eq!(no_method.status, 401);
    let off = gateway(None, &[("FORWARD_AUTH_PREFLIGHT", "false")]).await;
    let refused = get(&off, "/auth", &preflight(ORIGIN)).await;
    assert_eq!(refused.status, 401);
}

// --- resource limits --------------------------------------------------------------------

#[actix_rt::test]
async fn limits_hold_before_the_upstream() {
    let upstream = TestUpstream::start().await;
    let app = gateway(Some(&upstream.url), &[("GATEWAY_MAX_BODY_BYTES", "1024")]).await;
    let huge = format!("Bearer {}", "a".repeat(16 * 1024 + 1));
    let refused = get(&app, "/api/orders", &[("Authorization", &huge)]).await;
    refused.assert_unauthorized("malformed_token", "Invalid token", "oversized token");
    let many: Vec<(String, String)> = (0..60)
        .map(|i| (format!("X-Auth-Spoof-{i}"), "x".to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let stripped = get(&app, "/api/public/x", &many).await;
    assert_eq!(stripped.status, 200);
    assert!(identity_spellings(&upstream.last()).is_empty());
    let before = upstream.count();
    let declared = send(
        client()
            .post(format!("{}/api/public/x", app.base))
            .insert_header(("Content-Type", "text/plain")),
    )
    .await;
    assert_eq!(declared.status, 200);
    let large = app.post("/api/public/x", &[], vec![b'x'; 2048]).await;
    assert_eq!(
        (large.status.as_u16(), large.code()),
        (413, "payload_too_large")
    );
    assert_eq!(upstream.count(), before + 1);
    let chunked = format!(
        "POST /api/public/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
        "y".repeat(2048)
    );
    let answer = exchange(&app.base, chunked.as_bytes()).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(upstream.seen().iter().all(|s| s.body.len() <= 1024));
}
