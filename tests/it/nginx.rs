//! keygate as nginx's `auth_request` endpoint, with Debian's nginx started by the test
//! and configured by the README's own `nginx` block (only the addresses changed).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::front::{self, Front};
use crate::common::process::free_port;
use crate::common::*;

/// The README's configuration inside what a test run needs around it.
fn config(port: u16, keygate: &str, upstream: &str) -> String {
    let readme = front::readdress(
        &front::readme_block("nginx"),
        &[
            ("127.0.0.1:8080", keygate.trim_start_matches("http://")),
            ("127.0.0.1:8000", upstream.trim_start_matches("http://")),
            ("listen 80;", &format!("listen 127.0.0.1:{port};")),
        ],
    );
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
{readme}
}}
"#
    )
}

fn start_nginx(binary: PathBuf, keygate: &str, upstream: &str) -> Front {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("keygate-nginx-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(port, keygate, upstream)).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let front = Front {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    };
    front::wait_listening(port, &front.dir.join("error.log"), "nginx");
    front
}

#[actix_rt::test]
async fn nginx_auth_request_in_front_of_an_upstream() {
    let Some(binary) = front::binary(&["/usr/sbin/nginx", "/usr/bin/nginx"]) else {
        skip_without(
            "nginx (apt-get install nginx)",
            "nginx_auth_request_in_front_of_an_upstream",
        );
        return;
    };
    front::check_in_front("nginx", move |keygate, upstream| {
        start_nginx(binary, keygate, upstream)
    })
    .await;
}
