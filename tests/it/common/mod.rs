//! Test helpers: the app on a random port, a mock JWKS server with fetch counters,
//! a token factory, Svix-signed webhook deliveries and the test databases.

pub mod app;
pub mod backend_api;
#[path = "../../support/databases.rs"]
pub mod databases;
pub mod db;
pub mod front;
pub mod jwks_server;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod poll;
pub mod process;
pub mod svix;
pub mod tokens;
pub mod upstream;

/// Serves a mock's `App` factory on a free loopback port with one worker, in the
/// background of the test's actix system; evaluates to `(address, handle)`.
macro_rules! serve_mock {
    ($factory:expr) => {{
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = actix_web::HttpServer::new($factory)
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        (addr, handle)
    }};
}
pub(crate) use serve_mock;

pub use app::{Reply, TestApp, assert_hello, metric_value, spawn_app, spawn_app_with};
pub use jwks_server::{MockJwks, Mode};
pub use process::{run_keygate, spawn_keygate, spawn_keygate_on};
pub use tokens::*;

use std::time::{Duration, Instant};

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut check: F) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends a test that needs a component this machine lacks: a notice locally, a failure
/// when `CI` is set (CI must have every component).
pub fn skip_without(component: &str, test: &str) {
    if is_ci() {
        panic!("{test}: {component} is required when CI is set");
    }
    eprintln!("skipping {test}: {component} is not available");
}

/// [`skip_without`] for PostgreSQL (`TEST_DATABASE_URL`).
pub fn skip_without_postgres(test: &str) {
    skip_without("PostgreSQL (TEST_DATABASE_URL)", test);
}

/// Whether `CI` is set to something that means "yes".
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}
