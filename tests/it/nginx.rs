//! keygate as nginx's `auth_request` endpoint, with Debian's nginx started by the test:
//! a request without a token gets keygate's `401` challenge through nginx, an allowed
//! one reaches the upstream with `X-Auth-User-Id`, and a spoofed one never does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::process::free_port;
use crate::common::upstream::TestUpstream;
use crate::common::*;

/// A running nginx; stopped when dropped.
struct Nginx {
    child: Child,
    base: String,
    prefix: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The configuration of the README's nginx section, pointed at `keygate` and `upstream`.
fn config(port: u16, keygate: &str, upstream: &str) -> String {
    let keygate = keygate.trim_start_matches("http://");
    let upstream = upstream.trim_start_matches("http://");
    format!(
        r#"
# One process, the test's child (so it never drops privileges): killing it leaves no
# orphaned worker behind.
master_process off;
pid nginx.pid;
error_log error.log info;
events {{ worker_connections 64; }}
http {{
    access_log access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    upstream keygate {{ server {keygate}; keepalive 8; }}
    upstream app {{ server {upstream}; keepalive 8; }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_keygate_auth;
            auth_request_set $auth_user_id $upstream_http_x_auth_user_id;
            auth_request_set $auth_org_id $upstream_http_x_auth_org_id;
            proxy_set_header X-Auth-User-Id $auth_user_id;
            proxy_set_header X-Auth-Org-Id $auth_org_id;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }}
        location = /_keygate_auth {{
            internal;
            proxy_pass http://keygate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

fn start_nginx(binary: &Path, keygate: &str, upstream: &str) -> Nginx {
    let port = free_port();
    let prefix = std::env::temp_dir().join(format!("keygate-nginx-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&prefix).unwrap();
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config(port, keygate, upstream)).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        base: format!("http://127.0.0.1:{port}"),
        prefix,
    }
}

#[actix_rt::test]
async fn nginx_auth_request_in_front_of_an_upstream() {
    let Some(binary) = nginx_binary() else {
        skip_without(
            "nginx (apt-get install nginx)",
            "nginx_auth_request_in_front_of_an_upstream",
        );
        return;
    };
    let upstream = TestUpstream::start().await;
    let keygate = spawn_app(&[
        ("JWT_SECRET", SECRET),
        ("GATEWAY_PUBLIC_PATHS", "/public(.*)"),
    ])
    .await;
    let nginx = {
        let (binary, base, url) = (binary.clone(), keygate.base.clone(), upstream.url.clone());
        actix_rt::task::spawn_blocking(move || start_nginx(&binary, &base, &url))
            .await
            .unwrap()
    };
    let via = |path: &str, headers: &[(&str, &str)]| {
        let mut req = crate::common::app::client().get(format!("{}{path}", nginx.base));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        crate::common::app::send(req)
    };

    // No token: nginx answers keygate's 401 with keygate's challenge (its own body).
    let refused = via("/api/orders", &[]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let bad = via("/api/orders", &[("Authorization", "Bearer a.b.c")]).await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"Invalid token\"")
    );
    assert_eq!(
        upstream.count(),
        0,
        "a refused request reached the upstream"
    );

    // Allowed: the upstream gets keygate's identity, never the client's.
    let mut c = claims("user_nginx");
    c["org_id"] = json!("org_7");
    let token = format!("Bearer {}", hs256(&c));
    let allowed = via(
        "/api/orders?page=2",
        &[
            ("Authorization", token.as_str()),
            ("X-Auth-User-Id", "evil"),
            ("X-Auth-Org-Id", "org_evil"),
        ],
    )
    .await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    let seen = upstream.last();
    assert_eq!(seen.target, "/api/orders?page=2");
    assert_eq!(seen.all("x-auth-user-id"), vec!["user_nginx"]);
    assert_eq!(seen.all("x-auth-org-id"), vec!["org_7"]);

    // Public and anonymous: the spoofed identity is dropped, none is sent.
    let public = via("/public/docs", &[("X-Auth-User-Id", "evil")]).await;
    assert_eq!(public.status, 200);
    assert!(
        upstream.last().identity_names().is_empty(),
        "{:?}",
        upstream.last().headers
    );
}
