//! A JWKS server the tests control: publish and remove keys, fail, hang, return
//! garbage or an oversized body, and count fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The published keys.
    Normal,
    /// `500`.
    Fail,
    /// Never answers (within the test).
    Hang,
    /// `200` with a body that is not JSON.
    Garbage,
    /// `200` with a 2 MiB body.
    Oversized,
}

#[derive(Default)]
struct State {
    keys: Mutex<Vec<Value>>,
    mode: Mutex<Option<Mode>>,
    cache_control: Mutex<Option<String>>,
    authorizations: Mutex<Vec<Option<String>>>,
    fetches: AtomicUsize,
}

/// The mock server; stopped when dropped.
pub struct MockJwks {
    /// Its JWKS URL.
    pub url: String,
    state: Arc<State>,
    handle: ServerHandle,
}

async fn jwks(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    state.authorizations.lock().unwrap().push(auth);
    let mode = state.mode.lock().unwrap().unwrap_or(Mode::Normal);
    match mode {
        Mode::Normal => {
            let mut response = HttpResponse::Ok();
            if let Some(cc) = state.cache_control.lock().unwrap().clone() {
                response.insert_header(("Cache-Control", cc));
            }
            response.json(json!({ "keys": state.keys.lock().unwrap().clone() }))
        }
        Mode::Fail => HttpResponse::InternalServerError().body("boom"),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Mode::Garbage => HttpResponse::Ok()
            .content_type("application/json")
            .body("<html>not json"),
        Mode::Oversized => {
            let filler = "x".repeat(2 * 1024 * 1024);
            HttpResponse::Ok().json(json!({ "keys": [], "filler": filler }))
        }
    }
}

impl MockJwks {
    /// Starts serving `keys` at `/jwks.json` on a random port.
    pub async fn start(keys: Vec<Value>) -> MockJwks {
        let state = Arc::new(State::default());
        *state.keys.lock().unwrap() = keys;
        let data = web::Data::from(state.clone());
        let (addr, handle) = super::serve_mock!(move || {
            App::new()
                .app_data(data.clone())
                .route("/jwks.json", web::get().to(jwks))
                .route("/v1/jwks", web::get().to(jwks))
        });
        MockJwks {
            url: format!("http://{addr}/jwks.json"),
            state,
            handle,
        }
    }

    /// The server's base URL (for `CLERK_API_URL`).
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/jwks.json").to_string()
    }

    /// Replaces the published keys.
    pub fn publish(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    /// Changes how the server answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    /// Sets a `Cache-Control` header on normal answers.
    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.into());
    }

    /// Requests received so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// The `Authorization` header of every request so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state.authorizations.lock().unwrap().clone()
    }
}

impl Drop for MockJwks {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(false).await });
    }
}
