//! Test helpers: the app on a random port, a mock JWKS server with fetch counters,
//! a token factory, Svix-signed webhook deliveries and the test databases.

pub mod app;
pub mod backend_api;
pub use keygate_test_support::databases;
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

pub use poll::eventually;

/// Ends a test that needs a component this machine lacks: a notice locally, a failure
/// when `CI` is set (CI must have every component).
pub fn skip_without(component: &str, test: &str) {
    if is_ci() {
        panic!("{test}: {component} is required when CI is set");
    }
    eprintln!("skipping {test}: {component} is not available");
    record_skip(test, component);
}

/// What this run went without: `(test, component)`, reported when the binary ends.
static SKIPPED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Notes that `test` did not run for want of `component`. libtest shows a passing
/// test's output only on failure, so the notice alone would read as a pass: the
/// skips are printed again as the binary's last lines.
pub fn record_skip(test: &str, component: &str) {
    if let Ok(mut skipped) = SKIPPED.lock() {
        skipped.push((test.to_owned(), component.to_owned()));
    }
}

/// Runs when the test binary exits, after libtest's summary (the process's
/// finalisers run on `exit` and on a return from `main` alike).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".fini_array")]
static REPORT_SKIPS: extern "C" fn() = report_skips;

extern "C" fn report_skips() {
    use std::io::Write;
    let skipped = SKIPPED.lock().map(|s| s.clone()).unwrap_or_default();
    if skipped.is_empty() {
        return;
    }
    let mut out = std::io::stderr().lock();
    let _ = writeln!(
        out,
        "\nSKIPPED {} test(s) for missing components (they pass here but did not run; CI fails instead):",
        skipped.len()
    );
    for (test, component) in skipped {
        let _ = writeln!(out, "  {test}: {component}");
    }
}

/// [`skip_without`] for PostgreSQL (`TEST_DATABASE_URL`).
pub fn skip_without_postgres(test: &str) {
    skip_without("PostgreSQL (TEST_DATABASE_URL)", test);
}

/// Whether `CI` is set to something that means "yes".
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}
