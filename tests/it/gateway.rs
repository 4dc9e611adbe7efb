//! The gateway: forward auth on `/auth` by each proxy's conventions, and the reverse
//! proxy in front of a recording upstream. Every security point is asserted on what the
//! upstream received as well as on what the client got.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::app::{Reply, client, send};
use crate::common::upstream::{TestUpstream, echoed, raw_upstream};
use crate::common::*;

const RULES: &str = r#"
default = "authenticated"
[[rule]]
path = "/api/public(.*)"
access = "public"
[[rule]]
path = "/api/admin(.*)"
org_role = "org:admin"
[[rule]]
path = "/api/invoices(.*)"
permission = "org:invoices:read"
[[rule]]
path = "/api/machines(.*)"
accepts = ["m2m_token"]
"#;

/// A rules file in the temp directory.
fn rules_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("keygate-rules-{}.toml", rand::random::<u64>()));
    std::fs::write(&path, text).unwrap();
    path
}

fn member(role: &str, permissions: &[&str]) -> String {
    let mut c = claims("user_gw");
    c["org_id"] = json!("org_1");
    c["org_role"] = json!(role);
    c["org_permissions"] = json!(permissions);
    hs256(&c)
}

async fn forward_app(extra: &[(&str, &str)]) -> TestApp {
    let rules = rules_file(RULES);
    let rules = rules.to_str().unwrap().to_string();
    let mut vars = vec![("JWT_SECRET", SECRET), ("GATEWAY_RULES", rules.as_str())];
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

async fn proxy_app(upstream: &str, extra: &[(&str, &str)]) -> TestApp {
    let rules = rules_file(RULES);
    let rules = rules.to_str().unwrap().to_string();
    let mut vars = vec![
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.as_str()),
        ("UPSTREAM_URL", upstream),
    ];
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    app.get_with(path, headers).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// --- forward auth -----------------------------------------------------------------------

#[actix_rt::test]
async fn forward_auth_reads_each_proxys_original_request() {
    let app = forward_app(&[]).await;
    let admin = bearer(&member("org:admin", &[]));
    let plain = bearer(&member("org:member", &[]));
    // Traefik / Caddy.
    fn traefik<'a>(uri: &'a str, auth: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", uri),
            ("Authorization", auth),
        ]
    }
    assert_eq!(
        get(&app, "/auth", &traefik("/api/admin/users", &admin))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, "/auth", &traefik("/api/admin/users", &plain))
            .await
            .status,
        403
    );
    // nginx.
    let nginx = [
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/api/admin/users?x=1"),
        ("Authorization", plain.as_str()),
    ];
    let forbidden = get(&app, "/auth", &nginx).await;
    assert_eq!(
        (forbidden.status.as_u16(), &forbidden.body),
        (
            403,
            &json!({"detail": "Forbidden", "code": "insufficient_permission"})
        )
    );
    // Envoy: the original path after /auth, the method kept.
    let envoy = client()
        .delete(format!("{}/auth/api/admin/x", app.base))
        .insert_header(("Authorization", admin.as_str()));
    assert_eq!(send(envoy).await.status, 200);
    let envoy_member = client()
        .delete(format!("{}/auth/api/admin/x", app.base))
        .insert_header(("Authorization", plain.as_str()));
    assert_eq!(send(envoy_member).await.status, 403);
    // No original URI at all is "/", which the default makes authenticated.
    let bare = get(&app, "/auth", &[]).await;
    assert_eq!(bare.status, 401);
    assert_eq!(bare.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        bare.body,
        json!({"detail": "Not authenticated", "code": "missing_token"})
    );
}

#[actix_rt::test]
async fn forward_auth_answers_with_identity_headers_or_the_contracts_refusals() {
    let app = forward_app(&[("GATEWAY_FORWARD_CLAIMS", "true")]).await;
    let token = member("org:admin", &["org:invoices:read", "org:invoices:manage"]);
    let reply = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/invoices/7"),
            ("Authorization", &bearer(&token)),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, Value::Null, "an empty body");
    assert_eq!(reply.header("x-auth-user-id"), Some("user_gw"));
    assert_eq!(reply.header("x-auth-session-id"), Some("sess_user_gw"));
    assert_eq!(reply.header("x-auth-org-id"), Some("org_1"));
    assert_eq!(reply.header("x-auth-org-role"), Some("org:admin"));
    assert_eq!(
        reply.header("x-auth-org-permissions"),
        Some("org:invoices:read,org:invoices:manage")
    );
    assert_eq!(reply.header("x-auth-token-type"), Some("session_token"));
    let claims_header = reply.header("x-auth-claims").unwrap();
    let decoded: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims_header,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded["sub"], "user_gw");

    // A bad token: 401 as everywhere else; a permission missing: 403.
    let bad = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/x"),
            ("Authorization", "Bearer a.b.c"),
        ],
    )
    .await;
    bad.assert_unauthorized("malformed_token", "Invalid token", "bad token");
    let no_permission = member("org:admin", &[]);
    let reply = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/invoices/7"),
            ("Authorization", &bearer(&no_permission)),
        ],
    )
    .await;
    assert_eq!(reply.status, 403);
    // A session token where only machine tokens are accepted.
    let reply = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/machines"),
            ("Authorization", &bearer(&token)),
        ],
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (401, "token_type_not_accepted")
    );

    // Public: anonymous without identity, identity with a valid token, a bad one ignored.
    let anonymous = get(&app, "/auth", &[("X-Original-URI", "/api/public/docs")]).await;
    assert_eq!(anonymous.status, 200);
    assert!(anonymous.header("x-auth-user-id").is_none());
    let known = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/public/docs"),
            ("Authorization", &bearer(&token)),
        ],
    )
    .await;
    assert_eq!(known.header("x-auth-user-id"), Some("user_gw"));
    let ignored = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/public/docs"),
            ("Authorization", "Bearer a.b.c"),
        ],
    )
    .await;
    assert_eq!(
        (ignored.status.as_u16(), ignored.header("x-auth-user-id")),
        (200, None)
    );

    // The original path is normalised before the rules see it.
    let climb = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/api/public/../admin"),
            ("Authorization", &bearer(&member("org:member", &[]))),
        ],
    )
    .await;
    assert_eq!(climb.status, 403);
    let above = get(&app, "/auth", &[("X-Original-URI", "/../etc/passwd")]).await;
    assert_eq!(
        (above.status.as_u16(), &above.body),
        (
            400,
            &json!({"detail": "Bad request", "code": "invalid_path"})
        )
    );
}

#[actix_rt::test]
async fn forward_auth_answers_503_when_keys_are_unavailable() {
    let signer = Signer::rs256(0, "k1");
    let jwks = MockJwks::start(vec![signer.jwk()]).await;
    jwks.set_mode(Mode::Fail);
    let app = spawn_app(&[("JWKS_URL", &jwks.url)]).await;
    let reply = get(
        &app,
        "/auth",
        &[
            ("X-Original-URI", "/x"),
            ("Authorization", &bearer(&signer.sign(&claims("u")))),
        ],
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (503, "keys_unavailable")
    );
    assert!(reply.header("retry-after").is_some());
}

#[actix_rt::test]
async fn bad_rules_stop_keygate_at_start_naming_the_rule() {
    for (text, expected) in [
        (
            "[[rule]]\npath = \"/a(\"\n",
            "GATEWAY_RULES: rule 1 (/a(): not a valid regular expression",
        ),
        (
            "[[rule]]\npath = \"/a\"\ncolour = \"red\"\n",
            "GATEWAY_RULES: does not parse",
        ),
        ("default = \"sometimes\"\n", "GATEWAY_RULES: does not parse"),
        (
            "[[rule]]\npath = \"/a\"\n[[rule]]\npath = \"/b\"\naccepts = [\"jwt\"]\n",
            "GATEWAY_RULES: rule 2 (/b): unknown token type",
        ),
    ] {
        let file = rules_file(text);
        let (code, _, stderr) = run_keygate(
            &["serve"],
            &[
                ("JWT_SECRET", SECRET),
                ("GATEWAY_RULES", file.to_str().unwrap()),
            ],
        );
        assert_eq!(code, 2, "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let (code, _, stderr) = run_keygate(
        &["serve"],
        &[
            ("JWT_SECRET", SECRET),
            ("GATEWAY_RULES", "/nonexistent/rules.toml"),
        ],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("GATEWAY_RULES: cannot read /nonexistent/rules.toml"),
        "{stderr}"
    );
}

// --- the reverse proxy -----------------------------------------------------------------

#[actix_rt::test]
async fn denied_requests_never_reach_the_upstream() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[]).await;
    let plain = bearer(&member("org:member", &[]));
    for (path, headers, status) in [
        ("/api/items", vec![], 401),
        ("/api/items", vec![("Authorization", "Bearer a.b.c")], 401),
        (
            "/api/admin/users",
            vec![("Authorization", plain.as_str())],
            403,
        ),
        (
            "/api/invoices",
            vec![("Authorization", plain.as_str())],
            403,
        ),
        (
            "/api/machines",
            vec![("Authorization", plain.as_str())],
            401,
        ),
        ("/protected", vec![], 401),
    ] {
        let reply = get(&app, path, &headers).await;
        assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
    }
    assert_eq!(upstream.count(), 0, "a denied request reached the upstream");
    // Allowed ones do, /protected and /me included (they are the upstream's now).
    let ok = get(&app, "/protected", &[("Authorization", plain.as_str())]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(echoed(&ok.body), ("GET", "/protected", Some("user_gw")));
    // keygate's own routes live under /_keygate/.
    assert_eq!(
        get(&app, "/_keygate/healthz", &[]).await.body,
        json!({"status": "ok"})
    );
    assert_eq!(get(&app, "/_keygate/readyz", &[]).await.status, 200);
    assert!(
        app.get_text("/_keygate/metrics")
            .await
            .contains("keygate_upstream_requests_total{status=\"2xx\"} 1")
    );
    assert_eq!(upstream.count(), 1);
}

#[actix_rt::test]
async fn client_identity_headers_never_reach_the_upstream() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[]).await;
    let token = bearer(&member("org:member", &[]));
    let spoofed: [(&str, &str); 5] = [
        ("X-Auth-User-Id", "evil"),
        ("x-auth-user-id", "evil2"),
        ("X-AUTH-ORG-ROLE", "org:admin"),
        ("X-Auth-Claims", "e30"),
        ("X-Auth-Anything", "x"),
    ];
    // A public route, anonymous: no identity header at all.
    get(&app, "/api/public/a", &spoofed).await;
    let seen = upstream.last();
    assert!(seen.identity_names().is_empty(), "{:?}", seen.headers);
    // A public route with a valid token, and a protected one: only keygate's values.
    for path in ["/api/public/b", "/api/items"] {
        let mut headers = spoofed.to_vec();
        headers.push(("Authorization", token.as_str()));
        assert_eq!(get(&app, path, &headers).await.status, 200, "{path}");
        let seen = upstream.last();
        assert_eq!(seen.all("x-auth-user-id"), vec!["user_gw"], "{path}");
        assert_eq!(seen.all("x-auth-org-role"), vec!["org:member"], "{path}");
        assert!(seen.all("x-auth-claims").is_empty() && seen.all("x-auth-anything").is_empty());
    }
    // A bad token on a public route: anonymous, and the spoofed headers still gone.
    let mut headers = spoofed.to_vec();
    headers.push(("Authorization", "Bearer a.b.c"));
    get(&app, "/api/public/c", &headers).await;
    assert!(upstream.last().identity_names().is_empty());
}

#[actix_rt::test]
async fn paths_are_decided_and_forwarded_normalised() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[]).await;
    let plain = bearer(&member("org:member", &[]));
    let admin = bearer(&member("org:admin", &[]));
    let raw = |path: &str, auth: &str| {
        // Sent as written: awc would otherwise keep the path but the point is the bytes.
        client()
            .get(format!("{}{path}", app.base))
            .insert_header(("Authorization", auth.to_string()))
    };
    for path in [
        "/api/public/../admin",
        "/api/public/%2e%2e/admin",
        "/api/public/%2E%2E/admin",
        "//api/admin",
        "/api/public/./../admin/",
    ] {
        let before = upstream.count();
        let denied = send(raw(path, &plain)).await;
        assert_eq!(denied.status, 403, "{path}");
        assert_eq!(upstream.count(), before, "{path} reached the upstream");
        let allowed = send(raw(path, &admin)).await;
        assert_eq!(allowed.status, 200, "{path}");
        assert!(
            upstream.last().target.starts_with("/api/admin"),
            "{path} forwarded as {}",
            upstream.last().target
        );
    }
    // %2F stays encoded: one segment, under the public rule, forwarded as it came.
    let encoded = send(raw("/api/public/a%2fb", "")).await;
    assert_eq!(encoded.status, 200);
    assert_eq!(upstream.last().target, "/api/public/a%2fb");
    // Above the root: 400, nothing forwarded.
    let before = upstream.count();
    let above = send(raw("/api/../../etc/passwd", &admin)).await;
    assert_eq!((above.status.as_u16(), above.code()), (400, "invalid_path"));
    assert_eq!(upstream.count(), before);
    // A query that names a public path does not make the path public.
    let query = send(raw("/api/admin/x?next=/api/public/", &plain)).await;
    assert_eq!(query.status, 403);
    let query = send(raw("/api/admin/x?next=/api/public/", &admin)).await;
    assert_eq!(query.status, 200);
    assert_eq!(upstream.last().target, "/api/admin/x?next=/api/public/");
}

/// Sends raw bytes and returns the status line of the answer.
fn raw_http(base: &str, request: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[actix_rt::test]
async fn smuggling_attempts_are_refused_and_nothing_is_forwarded() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[("GATEWAY_PUBLIC_PATHS", "/open(.*)")]).await;
    let base = app.base.clone();
    let attempts = [
        "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd",
        "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ];
    let lines = actix_rt::task::spawn_blocking(move || {
        attempts
            .iter()
            .map(|a| raw_http(&base, a))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for line in lines {
        assert!(line.starts_with("HTTP/1.1 400"), "{line}");
    }
    assert_eq!(upstream.count(), 0);
    // And the gateway still serves.
    assert_eq!(get(&app, "/open/ok", &[]).await.status, 200);
}

#[actix_rt::test]
async fn upstream_failures_have_the_contracts_answers() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(
        &upstream.url,
        &[
            ("GATEWAY_PUBLIC_PATHS", "(.*)"),
            ("UPSTREAM_TIMEOUT_SECS", "1"),
            ("GATEWAY_MAX_BODY_BYTES", "1024"),
        ],
    )
    .await;
    let slow = get(&app, "/slow", &[]).await;
    assert_eq!(
        (slow.status.as_u16(), &slow.body),
        (
            504,
            &json!({"detail": "Gateway timeout", "code": "upstream_timeout"})
        )
    );
    let big = vec![b'x'; 2048];
    let declared = app.post("/upload", &[], big.clone()).await;
    assert_eq!(
        (declared.status.as_u16(), &declared.body),
        (
            413,
            &json!({"detail": "Payload too large", "code": "payload_too_large"})
        )
    );
    let chunks = futures_util::stream::iter(
        big.chunks(256)
            .map(|c| Ok::<_, actix_web::Error>(actix_web::web::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let streamed = client()
        .post(format!("{}/upload", app.base))
        .send_stream(chunks)
        .await
        .unwrap()
        .status();
    assert_eq!(streamed, 413);
    let uploads = upstream
        .seen()
        .iter()
        .filter(|s| s.target == "/upload" && s.body.len() > 1024)
        .count();
    assert_eq!(uploads, 0, "an oversized body reached the upstream whole");

    // An upstream that refuses connections.
    let port = crate::common::process::free_port();
    let down = proxy_app(
        &format!("http://127.0.0.1:{port}"),
        &[("GATEWAY_PUBLIC_PATHS", "(.*)")],
    )
    .await;
    let refused = get(&down, "/anything", &[]).await;
    assert_eq!(
        (refused.status.as_u16(), &refused.body),
        (
            502,
            &json!({"detail": "Bad gateway", "code": "upstream_unavailable"})
        )
    );
    assert!(
        down.get_text("/_keygate/metrics")
            .await
            .contains("keygate_upstream_requests_total{status=\"error\"} 1")
    );
    // Both keep serving.
    assert_eq!(get(&app, "/fine", &[]).await.status, 200);
    assert_eq!(get(&down, "/_keygate/healthz", &[]).await.status, 200);
}

#[actix_rt::test]
async fn requests_and_responses_pass_as_they_are_without_hop_by_hop_headers() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[]).await;
    let token = bearer(&member("org:member", &[]));
    let mut res = client()
        .post(format!("{}/api/items?x=1&y=%2F", app.base))
        .insert_header(("Authorization", token.as_str()))
        .insert_header(("Cookie", "theme=dark"))
        .insert_header(("X-Forwarded-For", "203.0.113.9"))
        .insert_header(("Keep-Alive", "timeout=5"))
        .insert_header(("X-Custom", "kept"))
        .insert_header(("Content-Type", "text/plain"))
        .send_body("hello upstream")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(body["body"], "hello upstream");
    let seen = upstream.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/api/items?x=1&y=%2F")
    );
    assert_eq!(seen.header("authorization"), Some(token.as_str()));
    assert_eq!(seen.header("cookie"), Some("theme=dark"));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(app.base.trim_start_matches("http://"))
    );
    assert!(seen.header("keep-alive").is_none(), "{:?}", seen.headers);
    // Headers a Connection header names are hop-by-hop too (sent raw: clients own Connection).
    let base = app.base.clone();
    let raw = format!(
        "GET /api/items HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nConnection: close, x-private\r\nX-Private: hop\r\n\r\n"
    );
    let line = actix_rt::task::spawn_blocking(move || raw_http(&base, &raw))
        .await
        .unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let seen = upstream.last();
    assert!(seen.header("x-private").is_none(), "{:?}", seen.headers);

    let mut res = client()
        .get(format!("{}/cookies", app.base))
        .insert_header(("Authorization", token.as_str()))
        .send()
        .await
        .unwrap();
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cookies, vec!["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(res.headers().get("x-kept").unwrap(), "yes");
    assert!(res.headers().get("keep-alive").is_none());
    assert_eq!(res.body().await.unwrap(), "cookies");
    // An upstream's own Connection header and the headers it names stay behind.
    let raw = raw_upstream(
        "HTTP/1.1 200 OK\r\nConnection: close, x-hop\r\nX-Hop: secret\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
    );
    let via = proxy_app(&raw, &[("GATEWAY_PUBLIC_PATHS", "(.*)")]).await;
    let mut res = client()
        .get(format!("{}/raw", via.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-hop").is_none(), "{:?}", res.headers());
    assert_eq!(res.headers().get("x-kept").unwrap(), "yes");
    assert_eq!(res.body().await.unwrap(), "ok");

    let mut streamed = client()
        .get(format!("{}/stream", app.base))
        .insert_header(("Authorization", token.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.body().await.unwrap(), "one two three");
    let teapot = get(&app, "/status/418", &[("Authorization", token.as_str())]).await;
    assert_eq!(teapot.status, 418);
}

#[actix_rt::test]
async fn bodies_reach_the_upstream_whole_with_their_framing() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[("GATEWAY_PUBLIC_PATHS", "(.*)")]).await;
    // A declared length goes on as that length.
    let sized: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let res = app.post("/sized", &[], sized.clone()).await;
    assert_eq!(res.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header("content-length"), Some("300000"));
    assert!(
        seen.header("transfer-encoding").is_none(),
        "{:?}",
        seen.headers
    );
    assert!(seen.body == sized, "the sized body arrived changed");
    // A chunked body goes on chunked, every byte in order.
    let chunks = futures_util::stream::iter(
        sized
            .chunks(7_000)
            .map(|c| Ok::<_, actix_web::Error>(actix_web::web::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let status = client()
        .post(format!("{}/chunked", app.base))
        .send_stream(chunks)
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let seen = upstream.last();
    assert_eq!(seen.target, "/chunked");
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    assert!(seen.body == sized, "the chunked body arrived changed");
    // No body: none is announced.
    let res = get(&app, "/empty", &[]).await;
    assert_eq!(res.status, 200);
    let seen = upstream.last();
    assert!(
        seen.header("content-length").is_none(),
        "{:?}",
        seen.headers
    );
    assert!(
        seen.header("transfer-encoding").is_none(),
        "{:?}",
        seen.headers
    );
    assert!(seen.body.is_empty());
    // HEAD: the upstream's length comes back without a body.
    let head = client()
        .head(format!("{}/cookies", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers().get("content-length").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
}

#[actix_rt::test]
async fn the_upstream_sees_its_own_host_and_every_repeated_header() {
    let upstream = TestUpstream::start().await;
    let app = proxy_app(&upstream.url, &[("GATEWAY_PUBLIC_PATHS", "(.*)")]).await;
    // A forged Host, a repeated header and an Expect: the upstream is addressed by its
    // own authority, the client's Host only travels as X-Forwarded-Host, repeats keep
    // their order, and a 100-continue exchange still delivers the body.
    let base = app.base.clone();
    let raw = "POST /hosted HTTP/1.1\r\nHost: evil.example\r\nX-Custom: one\r\nX-Custom: two\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_string();
    let line = actix_rt::task::spawn_blocking(move || raw_http(&base, &raw))
        .await
        .unwrap();
    assert!(
        line.starts_with("HTTP/1.1 100") || line.starts_with("HTTP/1.1 200"),
        "{line}"
    );
    let seen = upstream.last();
    assert_eq!(seen.target, "/hosted");
    assert_eq!(
        seen.all("host"),
        vec![upstream.url.trim_start_matches("http://")]
    );
    assert_eq!(seen.header("x-forwarded-host"), Some("evil.example"));
    assert_eq!(seen.all("x-custom"), vec!["one", "two"]);
    assert_eq!(seen.body, b"hello");
}
