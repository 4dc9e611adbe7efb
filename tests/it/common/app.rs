//! The real app on a random port, with its own SQLite database.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use keygate::clock::{Clock, SharedClock};
use keygate::{Keygate, Settings};
use serde_json::Value;

/// A running keygate.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The assembled app (for counters and state).
    pub keygate: Keygate,
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

/// A fresh SQLite database URL in the temp directory.
pub fn temp_sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("keygate-test-{}.db", rand_suffix()));
    format!("sqlite://{}?mode=rwc", path.display())
}

fn rand_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Starts keygate with these variables (plus a temp SQLite database and port 0).
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_with(vars, keygate::clock::system()).await
}

/// [`spawn_app`] with an injected clock.
pub async fn spawn_app_with(vars: &[(&str, &str)], clock: SharedClock) -> TestApp {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("DATABASE_URL".into())
        .or_insert_with(temp_sqlite_url);
    map.entry("WORKERS".into()).or_insert_with(|| "2".into());
    let settings = Settings::from_lookup(|k| map.get(k).cloned()).unwrap();
    start(settings, clock).await
}

/// Starts keygate with explicit settings.
pub async fn start(settings: Settings, clock: SharedClock) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keygate = Keygate::build(settings, clock).await.unwrap();
    let server = keygate.server(listener, None).unwrap();
    let handle = server.handle();
    actix_rt::spawn(server);
    TestApp {
        base,
        keygate,
        handle,
    }
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

    /// JWKS fetches the app's actor made.
    pub fn fetches(&self) -> u64 {
        self.keygate.service.keys.stats().fetches()
    }

    /// Messages requests sent to the actor.
    pub fn actor_messages(&self) -> u64 {
        self.keygate
            .service
            .keys
            .stats()
            .messages
            .load(std::sync::atomic::Ordering::SeqCst)
    }
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
