//! The real app on a random port, with its own SQLite database, built by the same
//! `Application::build` the binary uses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use keygate::Authenticator;
use keygate::clock::{Clock, SharedClock};
use keygate::server::{Application, Config};
use serde_json::Value;

/// A running keygate.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its `DATABASE_URL`.
    pub database_url: String,
    authenticator: Authenticator,
    handle: ServerHandle,
}

/// A response as the tests look at it.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts a 401 with the contract's body and `WWW-Authenticate` for `code`/`detail`.
    pub fn assert_unauthorized(&self, code: &str, detail: &str, what: &str) {
        assert_eq!(self.status, 401, "{what}: {:?}", self.body);
        assert_eq!(
            self.body,
            serde_json::json!({"detail": detail, "code": code}),
            "{what}"
        );
        assert_eq!(
            self.header("www-authenticate"),
            Some(
                format!("Bearer error=\"invalid_token\", error_description=\"{detail}\"").as_str()
            ),
            "{what}"
        );
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Asserts the `200` greeting of `/protected` for `user`.
pub fn assert_hello(reply: &Reply, user: &str, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {:?}", reply.body);
    assert_eq!(
        reply.body,
        serde_json::json!({"message": format!("Hello, user {user}")}),
        "{what}"
    );
}

/// A fresh SQLite database URL in the temp directory.
pub fn temp_sqlite_url() -> String {
    super::databases::fresh_sqlite_url()
}

/// Starts keygate with these variables (plus a temp SQLite database and port 0).
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_with(vars, keygate::clock::system()).await
}

/// [`spawn_app`] with an injected clock.
pub async fn spawn_app_with(vars: &[(&str, &str)], clock: SharedClock) -> TestApp {
    let mut config = config(vars);
    config.clock = clock;
    start(config).await
}

/// The configuration of these variables, plus a temp SQLite database, port 0 and
/// two workers unless they say otherwise.
pub fn config(vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("DATABASE_URL".into())
        .or_insert_with(temp_sqlite_url);
    map.entry("WORKERS".into()).or_insert_with(|| "2".into());
    map.entry("BIND_ADDR".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    let mut config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
    config.server.handle_signals = false;
    config
}

/// Starts keygate with an explicit configuration.
pub async fn start(config: Config) -> TestApp {
    try_start(config).await.unwrap()
}

/// Starts keygate, or says why it did not start.
pub async fn try_start(config: Config) -> Result<TestApp, keygate::server::StartError> {
    let database_url = config.server.database_url.clone();
    let app = Application::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let authenticator = app.authenticator().clone();
    actix_rt::spawn(app.run_until_stopped());
    Ok(TestApp {
        base,
        database_url,
        authenticator,
        handle,
    })
}

impl TestApp {
    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = client().get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        send(req).await
    }

    /// `GET path` with arbitrary headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = client().get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        send(req).await
    }

    /// `POST path` with arbitrary headers and a raw body (sent with `Content-Length`).
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut req = client().post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = req.send_body(body).await.unwrap();
        let body = res.body().limit(4 * 1024 * 1024).await.unwrap();
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }

    /// `GET path` as text.
    pub async fn get_text(&self, path: &str) -> String {
        let mut res = client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        String::from_utf8(res.body().await.unwrap().to_vec()).unwrap()
    }

    /// Waits (up to 10 s) until the app's keys were loaded.
    pub async fn wait_for_keys(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.authenticator.ready())
            .await
            .expect("the JWKS was never loaded");
    }

    /// The value of one sample of `/metrics`, e.g. `keygate_jwks_fetch_total{outcome="error"}`
    /// (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.get_text("/metrics").await, sample)
    }

    /// Stops the server (in-flight requests finish).
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// The value of `sample` in a Prometheus text exposition (0 when absent).
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(sample)?;
            rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
        })
        .unwrap_or(0.0)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(false).await });
    }
}

/// A client with a generous timeout.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish()
}

/// Sends and reads a request.
pub async fn send(req: awc::ClientRequest) -> Reply {
    let mut res = req.send().await.unwrap();
    let body = res.body().limit(4 * 1024 * 1024).await.unwrap();
    Reply {
        status: res.status(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// Keeps `Arc<dyn Clock>` handy for tests with a manual clock.
pub fn shared(clock: Arc<impl Clock>) -> SharedClock {
    clock
}
