//! A mock of Clerk's Backend API verify endpoints for opaque machine tokens: it records
//! every request (path, body, `Authorization`) and answers from a table the test fills.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// One request the mock received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The JSON body.
    pub body: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// Token → (status, body) answered for it; unknown tokens get 404.
    answers: Mutex<HashMap<String, (u16, Value)>>,
    received: Mutex<Vec<Received>>,
    /// When set, every request gets this status (an outage).
    fail_with: Mutex<Option<u16>>,
}

/// The mock; stopped when dropped.
pub struct MockBackendApi {
    /// The base URL, for `CLERK_API_URL`.
    pub url: String,
    state: Arc<State>,
    handle: ServerHandle,
}

async fn verify(req: HttpRequest, body: web::Json<Value>, state: web::Data<State>) -> HttpResponse {
    let token = ["token", "access_token", "secret"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    state.received.lock().unwrap().push(Received {
        path: req.path().to_string(),
        body: body.into_inner(),
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    });
    if let Some(status) = *state.fail_with.lock().unwrap() {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(json!({"errors": [{"message": "down"}]}));
    }
    match state.answers.lock().unwrap().get(&token) {
        Some((status, answer)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
                .content_type("application/json")
                .body(answer.to_string())
        }
        None => HttpResponse::NotFound()
            .json(json!({"errors": [{"code": "resource_not_found", "message": "not found"}]})),
    }
}

impl MockBackendApi {
    /// Starts the three verify endpoints on a random port.
    pub async fn start() -> MockBackendApi {
        let state = Arc::new(State::default());
        let data = web::Data::from(state.clone());
        let (addr, handle) = super::serve_mock!(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/m2m_tokens/verify", web::post().to(verify))
                .route(
                    "/v1/oauth_applications/access_tokens/verify",
                    web::post().to(verify),
                )
                .route("/v1/api_keys/verify", web::post().to(verify))
        });
        MockBackendApi {
            url: format!("http://{addr}"),
            state,
            handle,
        }
    }

    /// Answers `token` with `200` and `body`.
    pub fn accept(&self, token: &str, body: Value) {
        self.answer(token, 200, body);
    }

    /// Answers `token` with `status` and `body`.
    pub fn answer(&self, token: &str, status: u16, body: Value) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(token.to_string(), (status, body));
    }

    /// Every request gets `status` (`None`: back to normal).
    pub fn fail_with(&self, status: Option<u16>) {
        *self.state.fail_with.lock().unwrap() = status;
    }

    /// The requests so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// How many requests asked about `token`.
    pub fn calls_for(&self, token: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| {
                ["token", "access_token", "secret"]
                    .iter()
                    .any(|k| r.body.get(*k).and_then(Value::as_str) == Some(token))
            })
            .count()
    }
}

impl Drop for MockBackendApi {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(false).await });
    }
}

/// An M2M token object as the Backend API returns it.
pub fn m2m_answer(subject: &str, scopes: &[&str], expiration_ms: Option<i64>) -> Value {
    json!({
        "object": "machine_to_machine_token",
        "id": "mt_id_1",
        "subject": subject,
        "scopes": scopes,
        "claims": {"tier": "gold"},
        "revoked": false,
        "revocation_reason": null,
        "expired": false,
        "expiration": expiration_ms,
        "created_at": 1,
        "updated_at": 1
    })
}
