//! A proxy of the field (nginx, Caddy) in front of keygate's `/auth` and a recording
//! upstream, configured exactly as the README says: the configuration is read from the
//! README's own code block, and only the addresses are changed.

use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;

use super::app::{Reply, client, send};
use super::upstream::TestUpstream;
use super::*;

/// The rules keygate runs with behind the proxies.
pub const RULES: &str = r#"
default = "authenticated"
[[rule]]
path = "/public(.*)"
access = "public"
[[rule]]
path = "/api/admin(.*)"
org_role = "org:admin"
"#;

/// The browser origin CORS allows.
pub const ORIGIN: &str = "https://app.example.com";

/// The first code block of README.md whose info string is `info`.
pub fn readme_block(info: &str) -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find(&format!("\n```{info}\n"))
        .unwrap_or_else(|| panic!("README.md has no ```{info} block"))
        + info.len()
        + 5;
    let end = start + readme[start..].find("\n```").unwrap();
    readme[start..end].to_string()
}

/// The first of `paths` that exists: where Debian (or a local install) puts a binary.
pub fn binary(paths: &[&str]) -> Option<std::path::PathBuf> {
    paths
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// `text` with each `(from, to)` replaced; every `from` must occur.
pub fn readdress(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        assert!(
            out.contains(from),
            "the README's block no longer has {from:?}"
        );
        out = out.replace(from, to);
    }
    out
}

/// A proxy process; killed (and its directory removed) when dropped.
pub struct Front {
    /// The child.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its working directory.
    pub dir: std::path::PathBuf,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `port` accepts connections, or fails with `log`'s text.
pub fn wait_listening(port: u16, log: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// keygate as the proxies' `/auth`.
pub async fn keygate() -> TestApp {
    let rules = std::env::temp_dir().join(format!("keygate-front-{}.toml", rand::random::<u64>()));
    std::fs::write(&rules, RULES).unwrap();
    spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_RULES", rules.to_str().unwrap()),
        ("CORS_ALLOWED_ORIGINS", ORIGIN),
    ])
    .await
}

async fn via(front: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, format!("{front}{path}"));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    send(req).await
}

/// The names of a request's headers that a CGI server would read as `X-Auth-*`, with
/// their values, sorted.
fn identity(seen: &super::upstream::Seen) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = seen
        .headers
        .iter()
        .map(|(n, v)| (n.replace('_', "-"), v.clone()))
        .filter(|(n, _)| n.starts_with("x-auth-"))
        .collect();
    out.sort();
    out
}

/// Starts keygate, a recording upstream and the proxy `start` makes in front of them
/// (off the test's runtime: it waits for the port), then checks [`assert_guards`].
pub async fn check_in_front(
    what: &'static str,
    start: impl FnOnce(&str, &str) -> Front + Send + 'static,
) {
    let upstream = TestUpstream::start().await;
    let keygate = keygate().await;
    let (base, url) = (keygate.base.clone(), upstream.url.clone());
    let front = actix_rt::task::spawn_blocking(move || start(&base, &url))
        .await
        .unwrap();
    assert_guards(&front.base, &upstream, what).await;
}

/// What every proxy configured as the README says must guarantee, checked through
/// `front` (the proxy's base URL), with `upstream` behind it.
pub async fn assert_guards(front: &str, upstream: &TestUpstream, what: &str) {
    // No token: keygate's challenge reaches the client; nothing reaches the upstream.
    let refused = via(front, "GET", "/api/orders", &[]).await;
    assert_eq!(refused.status, 401, "{what}");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"), "{what}");
    let bad = via(
        front,
        "GET",
        "/api/orders",
        &[("Authorization", "Bearer a.b.c")],
    )
    .await;
    assert_eq!(bad.status, 401, "{what}");
    assert_eq!(
        bad.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"Invalid token\""),
        "{what}"
    );
    assert_eq!(
        upstream.count(),
        0,
        "{what}: a refused request reached the upstream"
    );

    // Allowed: exactly keygate's identity, whatever the client sent in whatever spelling.
    let mut c = claims("user_front");
    c["org_id"] = json!("org_7");
    c["org_role"] = json!("org:member");
    c["pla"] = json!("u:free,o:pro");
    c["fea"] = json!("o:export");
    let token = format!("Bearer {}", hs256(&c));
    let spoofs = [
        ("X-Auth-User-Id", "evil"),
        ("x-auth-org-role", "org:admin"),
        ("X_Auth_Org_Role", "org:admin"),
        ("X-Auth_Org-Permissions", "org:all"),
        ("X_Auth-Claims", "e30"),
        ("X-AUTH-PLAN", "u:pro"),
        ("X-Original-URL", "/api/admin"),
        ("X-HTTP-Method-Override", "DELETE"),
    ];
    let mut headers = vec![("Authorization", token.as_str())];
    headers.extend_from_slice(&spoofs);
    let allowed = via(front, "GET", "/api/orders?page=2", &headers).await;
    assert_eq!(allowed.status, 200, "{what}: {:?}", allowed.body);
    let seen = upstream.last();
    assert_eq!(seen.target, "/api/orders?page=2", "{what}");
    let expected: Vec<(String, String)> = [
        ("x-auth-features", "o:export"),
        ("x-auth-org-id", "org_7"),
        ("x-auth-org-role", "org:member"),
        ("x-auth-plan", "u:free,o:pro"),
        ("x-auth-session-id", "sess_user_front"),
        ("x-auth-token-type", "session_token"),
        ("x-auth-user-id", "user_front"),
    ]
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .to_vec();
    assert_eq!(identity(&seen), expected, "{what}: {:?}", seen.headers);
    for name in ["x-original-url", "x-http-method-override"] {
        assert!(
            seen.header(name).is_none(),
            "{what}: {name} reached the upstream"
        );
    }

    // Public and anonymous: the spoofed identity is gone and none is sent.
    let public = via(front, "GET", "/public/docs", &spoofs).await;
    assert_eq!(public.status, 200, "{what}");
    assert_eq!(
        identity(&upstream.last()),
        Vec::new(),
        "{what}: {:?}",
        upstream.last().headers
    );

    // A client's own original-request headers cannot move the decision to a public path.
    let before = upstream.count();
    for (name, value) in [
        ("X-Forwarded-Uri", "/public/x"),
        ("X-Original-URI", "/public/x"),
        ("X-Forwarded-Method", "OPTIONS"),
    ] {
        let moved = via(
            front,
            "GET",
            "/api/admin/users",
            &[("Authorization", &token), (name, value)],
        )
        .await;
        assert_eq!(moved.status, 403, "{what}: {name}");
    }
    assert_eq!(
        upstream.count(),
        before,
        "{what}: a moved decision reached the upstream"
    );

    // A CORS preflight from the allowed origin reaches the backend, which answers it.
    let preflight = via(
        front,
        "OPTIONS",
        "/api/admin/users",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 200, "{what}");
    let seen = upstream.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("OPTIONS", "/api/admin/users"),
        "{what}"
    );
    assert_eq!(identity(&seen), Vec::new(), "{what}");
    // From another origin it is decided like any request.
    let foreign = via(
        front,
        "OPTIONS",
        "/api/admin/users",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "DELETE"),
        ],
    )
    .await;
    assert_ne!(foreign.status, 200, "{what}");
}
