//! CORS as a page on another origin sees it: preflights answered before authentication,
//! readable 401s, exposed headers, the default origins and proxy mode.

use serde_json::json;

use crate::common::app::{Reply, client, send};
use crate::common::process;
use crate::common::upstream::{TestUpstream, raw_upstream};
use crate::common::*;

const APP: &str = "http://localhost:3000";
const OTHER: &str = "https://evil.example.com";

async fn preflight(app: &TestApp, path: &str, origin: &str, headers: &str) -> Reply {
    let req = client()
        .request(
            actix_web::http::Method::OPTIONS,
            format!("{}{path}", app.base),
        )
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "GET"))
        .insert_header(("Access-Control-Request-Headers", headers));
    send(req).await
}

async fn from_origin(app: &TestApp, path: &str, origin: &str, token: Option<&str>) -> Reply {
    let mut headers = vec![("Origin", origin.to_string())];
    if let Some(token) = token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.get_with(path, &headers).await
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|n| n.as_str().to_string())
        .filter(|n| n.starts_with("access-control-"))
        .collect()
}

fn listed(reply: &Reply, header: &str) -> Vec<String> {
    reply
        .header(header)
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[actix_rt::test]
async fn a_preflight_from_an_allowed_origin_is_answered_without_a_token() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CORS_ALLOWED_ORIGINS", APP),
        ("CORS_ALLOWED_HEADERS", "X-Tenant"),
    ])
    .await;
    for path in ["/protected", "/me", "/no-such-route"] {
        let reply = preflight(&app, path, APP, "authorization, content-type, x-tenant").await;
        assert_eq!(reply.status, 204, "{path}: {:?}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
        assert_eq!(
            reply.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(reply.header("access-control-max-age"), Some("600"));
        assert!(listed(&reply, "vary").contains(&"origin".to_string()));
        let methods = listed(&reply, "access-control-allow-methods");
        for method in ["get", "post", "delete"] {
            assert!(methods.contains(&method.to_string()), "{methods:?}");
        }
        let allowed = listed(&reply, "access-control-allow-headers");
        for name in ["authorization", "content-type", "x-tenant"] {
            assert!(allowed.contains(&name.to_string()), "{allowed:?}");
        }
        assert!(reply.header("www-authenticate").is_none());
    }
}

#[actix_rt::test]
async fn a_preflight_from_another_origin_gets_no_cors_header() {
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("CORS_ALLOWED_ORIGINS", APP)]).await;
    let reply = preflight(&app, "/protected", OTHER, "authorization").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.code(), "cors_not_allowed");
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);

    // An allowed origin asking for a header nobody configured is refused the same way.
    let reply = preflight(&app, "/protected", APP, "x-not-configured").await;
    assert_eq!(reply.status, 403);
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);
}

#[actix_rt::test]
async fn a_401_is_readable_cross_origin_with_its_challenge_and_request_id() {
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("CORS_ALLOWED_ORIGINS", APP)]).await;
    let reply = from_origin(&app, "/protected", APP, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.code(), "missing_token");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(listed(&reply, "vary").contains(&"origin".to_string()));
    let exposed = listed(&reply, "access-control-expose-headers");
    assert!(
        exposed.contains(&"www-authenticate".to_string()),
        "{exposed:?}"
    );
    assert!(exposed.contains(&"x-request-id".to_string()), "{exposed:?}");
    assert!(reply.header("x-request-id").is_some());

    let reply = from_origin(&app, "/protected", APP, Some(&hs256(&claims("cors_user")))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"message": "Hello, user cors_user"}));
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));

    // Another origin is served as before, without a header that would let its page read it.
    let reply = from_origin(
        &app,
        "/protected",
        OTHER,
        Some(&hs256(&claims("cors_user"))),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(cors_headers(&reply).is_empty(), "{:?}", reply.headers);
}

#[actix_rt::test]
async fn a_403_of_a_rule_is_readable_cross_origin() {
    let rules = std::env::temp_dir().join(format!("keygate-cors-{}.toml", rand::random::<u64>()));
    std::fs::write(
        &rules,
        "default = \"authenticated\"\n[[rule]]\npath = \"/admin(.*)\"\norg_role = \"org:admin\"\n",
    )
    .unwrap();
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CORS_ALLOWED_ORIGINS", APP),
        ("GATEWAY_RULES", rules.to_str().unwrap()),
    ])
    .await;
    let reply = from_origin(&app, "/auth/admin", APP, Some(&hs256(&claims("no_org")))).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
}

#[actix_rt::test]
async fn the_authorized_parties_are_the_default_origins() {
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        (
            "JWT_AUTHORIZED_PARTIES",
            "http://localhost:3000, https://app.example.com",
        ),
    ])
    .await;
    for origin in [APP, "https://app.example.com"] {
        let reply = preflight(&app, "/protected", origin, "authorization").await;
        assert_eq!(reply.status, 204, "{origin}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    }
    let reply = preflight(&app, "/protected", OTHER, "authorization").await;
    assert!(cors_headers(&reply).is_empty());

    // Set and empty, it turns CORS off: OPTIONS is routed as before.
    let off = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("JWT_AUTHORIZED_PARTIES", APP),
        ("CORS_ALLOWED_ORIGINS", ""),
    ])
    .await;
    let reply = preflight(&off, "/protected", APP, "authorization").await;
    assert_ne!(reply.status, 204);
    assert!(cors_headers(&reply).is_empty());
    // And with neither set there is no CORS at all.
    let none = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let reply = from_origin(&none, "/protected", APP, None).await;
    assert!(cors_headers(&reply).is_empty());
}

#[test]
fn a_wildcard_origin_stops_the_start() {
    for (var, value) in [
        ("CORS_ALLOWED_ORIGINS", "*"),
        ("JWT_AUTHORIZED_PARTIES", "*"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com/dashboard"),
    ] {
        let (code, _, stderr) = run_keygate(&["serve"], &[("JWT_SECRET", SECRET), (var, value)]);
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}

#[actix_rt::test]
async fn in_proxy_mode_keygates_cors_headers_replace_the_upstreams() {
    let upstream = TestUpstream::start().await;
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CORS_ALLOWED_ORIGINS", APP),
        ("UPSTREAM_URL", &upstream.url),
    ])
    .await;
    // The preflight never reaches the upstream.
    let reply = preflight(&app, "/api/orders", APP, "authorization").await;
    assert_eq!(reply.status, 204);
    assert_eq!(upstream.count(), 0);
    // A refused request is readable by the page, and was not forwarded either.
    let reply = from_origin(&app, "/api/orders", APP, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(upstream.count(), 0);

    // An upstream with CORS headers of its own: keygate's win, none of the upstream's stay.
    let raw = raw_upstream(
        "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: PUT\r\nAccess-Control-Expose-Headers: X-Secret\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    let app = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("CORS_ALLOWED_ORIGINS", APP),
        ("UPSTREAM_URL", &raw),
    ])
    .await;
    let reply = from_origin(&app, "/api/orders", APP, Some(&hs256(&claims("cors_user")))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get_all("access-control-allow-origin").count(),
        1
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert!(reply.header("access-control-allow-methods").is_none());
    let exposed = listed(&reply, "access-control-expose-headers");
    assert!(!exposed.contains(&"x-secret".to_string()), "{exposed:?}");
    assert!(
        exposed.contains(&"www-authenticate".to_string()),
        "{exposed:?}"
    );
}

#[actix_rt::test]
async fn a_page_on_another_origin_reads_the_200_and_the_401_in_chromium() {
    if !crate::dev::browser_test_can_run("CORS browser test") {
        return;
    }
    let (allowed, other) = (process::free_port(), process::free_port());
    let origin = format!("http://127.0.0.1:{allowed}");
    let keygate = spawn_keygate(
        &["serve"],
        &[("JWT_SECRET", SECRET), ("CORS_ALLOWED_ORIGINS", &origin)],
    );
    keygate.wait_healthy().await;
    let token = hs256(&claims("user_cors_browser"));
    let child = std::process::Command::new("node")
        .arg("cors.mjs")
        .arg(&keygate.base)
        .arg(allowed.to_string())
        .arg(other.to_string())
        .arg(&token)
        .current_dir(crate::dev::browser_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Starting Chromium on a busy two-core machine can take a while.
    let output = actix_rt::task::spawn_blocking(move || {
        crate::dev::wait_output_within(child, std::time::Duration::from_secs(150))
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "CORS browser test failed ({:?})\nstdout:\n{}\nstderr:\n{}\nkeygate stderr:\n{:?}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        keygate.stderr_lines()
    );
}
