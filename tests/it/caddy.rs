//! keygate as Caddy's forward auth, with Debian's Caddy (2.6) started by the test and
//! configured by the README's own `caddyfile` block (only the addresses changed).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::front::{self, Front};
use crate::common::process::free_port;
use crate::common::*;

/// The README's Caddyfile, after the global options a test run needs (no admin
/// endpoint, no certificates: several Caddys may run at once, on loopback only).
fn config(port: u16, keygate: &str, upstream: &str) -> String {
    let readme = front::readdress(
        &front::readme_block("caddyfile"),
        &[
            ("127.0.0.1:8080", keygate.trim_start_matches("http://")),
            ("127.0.0.1:8000", upstream.trim_start_matches("http://")),
            (":80 {", &format!("http://127.0.0.1:{port} {{")),
        ],
    );
    format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{readme}\n")
}

fn start_caddy(binary: PathBuf, keygate: &str, upstream: &str) -> Front {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("keygate-caddy-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("Caddyfile");
    std::fs::write(&conf, config(port, keygate, upstream)).unwrap();
    let log = dir.join("caddy.log");
    let child = Command::new(binary)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&conf)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let front = Front {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    };
    front::wait_listening(port, &log, "caddy");
    front
}

#[actix_rt::test]
async fn caddy_forward_auth_in_front_of_an_upstream() {
    let Some(binary) = front::binary(&["/usr/bin/caddy", "/usr/local/bin/caddy"]) else {
        skip_without(
            "Caddy (apt-get install caddy)",
            "caddy_forward_auth_in_front_of_an_upstream",
        );
        return;
    };
    front::check_in_front("caddy", move |keygate, upstream| {
        start_caddy(binary, keygate, upstream)
    })
    .await;
}
