//! `POST /webhooks/clerk`: Clerk's user and session events, after their Svix
//! signature verified ([`super::svix`]).
//!
//! A delivery is verified (HMAC-SHA256 over `{svix-id}.{svix-timestamp}.{body}`,
//! timestamp within 5 minutes) before its JSON is even parsed, and its effect
//! is written in one transaction with its idempotency record, so a redelivery
//! changes nothing and a failure leaves nothing half-written. This module must
//! never log or echo the signing secret, and never write anything for a
//! delivery that failed verification.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::svix::{self, SvixError};
use crate::clock::SharedClock;
use crate::server::gateway::sockets::Sockets;
use crate::server::store::{Profile, RevocationSet, Store, StoreError, WebhookEffect};

/// The route this module serves.
pub const PATH: &str = "/webhooks/clerk";
/// Largest accepted body; Clerk's events are a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Revocations outlive the session's `expire_at` by this much: a token issued
/// just before the session expired stays valid for its own lifetime (60 s by
/// default, longer with custom templates) plus the verifier's leeway.
const REVOCATION_MARGIN_SECS: i64 = 3600;
/// How long a revocation lasts when the event has no `expire_at`.
const DEFAULT_REVOCATION_SECS: i64 = 7 * 24 * 3600;

/// Why a delivery was refused. [`ResponseError`] is the one place these become HTTP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The Svix signature is missing, stale or wrong.
    #[error(transparent)]
    Signature(#[from] SvixError),
    /// The verified body is not a Clerk event this service can apply.
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("payload larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// The database failed; the cause is logged where it happened.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::Signature(_) | WebhookError::InvalidPayload(_) => StatusCode::BAD_REQUEST,
            WebhookError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (detail, code) = match self {
            WebhookError::Signature(SvixError::MissingHeader(name)) => {
                (format!("Missing {name} header"), "invalid_signature")
            }
            WebhookError::Signature(SvixError::InvalidTimestamp) => (
                "Invalid svix-timestamp header".to_owned(),
                "invalid_signature",
            ),
            WebhookError::Signature(SvixError::TimestampOutOfTolerance) => (
                "Message timestamp too old or too new".to_owned(),
                "invalid_signature",
            ),
            WebhookError::Signature(SvixError::InvalidSignature) => (
                "No matching signature found".to_owned(),
                "invalid_signature",
            ),
            WebhookError::InvalidPayload(why) => {
                (format!("Invalid payload: {why}"), "invalid_payload")
            }
            WebhookError::PayloadTooLarge => ("Payload too large".to_owned(), "payload_too_large"),
            // The cause may name tables or hosts; it goes to the logs only.
            WebhookError::Unavailable(_) => ("Service unavailable".to_owned(), "unavailable"),
        };
        crate::error_response(self.status_code(), &detail, code)
    }
}

/// What the webhook route needs. Build it once at start; it is cloned into the route.
#[derive(Clone)]
pub struct WebhookState {
    /// The HMAC key from [`svix::decode_signing_secret`].
    pub secret: Vec<u8>,
    /// Where events and their idempotency records are written.
    pub store: Store,
    /// Revoked sessions are added here at once, ahead of the next poll.
    pub revocations: RevocationSet,
    /// The clock the Svix timestamps are checked against.
    pub clock: SharedClock,
    /// The proxied WebSockets: a deleted user's are closed (a revoked session's are
    /// closed through the revocation set, whichever replica learns of it).
    pub sockets: Sockets,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("secret", &"<redacted>")
            .field("store", &self.store)
            .field("revocations", &self.revocations)
            .finish()
    }
}

/// Registers `POST /webhooks/clerk` with its own state (as resource-level
/// `app_data`, so it cannot clash with the app's): use
/// `App::new().configure(webhooks::clerk::configure(state.clone()))`.
///
/// Bodies over 256 KiB get `413` with a JSON error body.
pub fn configure(state: WebhookState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            crate::server::routes::labelled(PATH)
                .app_data(web::Data::new(state))
                .route(web::post().to(receive)),
        );
    }
}

async fn receive(
    state: web::Data<WebhookState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebhookError> {
    let body = read_body(req.headers(), payload).await?;
    let now = i64::try_from(state.clock.unix_secs()).unwrap_or(i64::MAX);
    let headers = req.headers();
    // Svix also sends the unbranded Standard Webhooks names; its libraries accept either.
    let id = header(headers, "svix-id", "webhook-id");
    svix::verify(
        &state.secret,
        id,
        header(headers, "svix-timestamp", "webhook-timestamp"),
        header(headers, "svix-signature", "webhook-signature"),
        &body,
        now,
    )?;
    let id = svix::present(id).ok_or(SvixError::MissingHeader("svix-id"))?;

    let event = parse_event(&body, now)?;
    let applied = state
        .store
        .apply_webhook_event(id, &event.event_type, &event.effect, now)
        .await
        .inspect_err(|e| {
            tracing::error!(
                "clerk webhook {id} ({}): database failure, answering 503 so Svix retries: {e}",
                event.event_type
            );
        })?;

    if !applied {
        tracing::info!("clerk webhook {id} ({}) already handled", event.event_type);
    } else {
        if let WebhookEffect::RevokeSession {
            session_id,
            expires_at,
        } = &event.effect
        {
            state.revocations.insert(session_id, *expires_at);
        }
        if let WebhookEffect::DeleteUser(user_id) = &event.effect {
            state.sockets.revoke_user(user_id);
        }
        tracing::info!("clerk webhook {id} ({}) handled", event.event_type);
    }
    Ok(HttpResponse::NoContent().finish())
}

fn header<'a>(headers: &'a HeaderMap, name: &str, alias: &str) -> Option<&'a str> {
    headers
        .get(name)
        .or_else(|| headers.get(alias))
        .and_then(|v| v.to_str().ok())
}

/// Reads the body, refusing to buffer more than [`MAX_BODY_BYTES`].
async fn read_body(
    headers: &HeaderMap,
    mut payload: web::Payload,
) -> Result<web::Bytes, WebhookError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(WebhookError::PayloadTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| WebhookError::InvalidPayload("the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(WebhookError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A verified event reduced to what it does.
#[derive(Debug, PartialEq, Eq)]
struct Event {
    event_type: String,
    effect: WebhookEffect,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct UserData {
    id: String,
    #[serde(default)]
    email_addresses: Option<Vec<EmailAddress>>,
    #[serde(default)]
    primary_email_address_id: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

#[derive(Deserialize)]
struct EmailAddress {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
struct DeletedData {
    id: String,
}

#[derive(Deserialize)]
struct SessionData {
    id: String,
    /// Milliseconds since the epoch in Clerk's payloads.
    #[serde(default)]
    expire_at: Option<serde_json::Number>,
}

fn parse_event(body: &[u8], now: i64) -> Result<Event, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        tracing::debug!("clerk webhook body is not an event: {e}");
        WebhookError::InvalidPayload("not a JSON event with a string type")
    })?;
    let effect = match envelope.event_type.as_str() {
        "user.created" | "user.updated" => {
            let user: UserData = data(envelope.data, "data is not a user")?;
            let user_id = non_empty(user.id)?;
            let email = user.primary_email_address_id.and_then(|primary| {
                user.email_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .find(|e| e.id.as_deref() == Some(primary.as_str()))
                    .and_then(|e| e.email_address)
            });
            WebhookEffect::UpsertProfile(Profile {
                user_id,
                email,
                first_name: user.first_name,
                last_name: user.last_name,
                image_url: user.image_url,
            })
        }
        "user.deleted" => {
            let deleted: DeletedData = data(envelope.data, "data has no user id")?;
            WebhookEffect::DeleteUser(non_empty(deleted.id)?)
        }
        "session.ended" | "session.removed" | "session.revoked" => {
            let session: SessionData = data(envelope.data, "data is not a session")?;
            let expires_at = match session.expire_at.as_ref().and_then(millis_to_secs) {
                Some(expire_at) => expire_at.max(now).saturating_add(REVOCATION_MARGIN_SECS),
                None => now.saturating_add(DEFAULT_REVOCATION_SECS),
            };
            WebhookEffect::RevokeSession {
                session_id: non_empty(session.id)?,
                expires_at,
            }
        }
        _ => WebhookEffect::Nothing,
    };
    Ok(Event {
        event_type: envelope.event_type,
        effect,
    })
}

fn data<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    why: &'static str,
) -> Result<T, WebhookError> {
    serde_json::from_value(value).map_err(|e| {
        tracing::debug!("clerk webhook data rejected: {e}");
        WebhookError::InvalidPayload(why)
    })
}

fn non_empty(id: String) -> Result<String, WebhookError> {
    if id.trim().is_empty() {
        Err(WebhookError::InvalidPayload("data.id is empty"))
    } else {
        Ok(id)
    }
}

/// Milliseconds (integer or float) to whole seconds, rounded up so the
/// revocation never ends before the session does.
fn millis_to_secs(ms: &serde_json::Number) -> Option<i64> {
    let ms = ms.as_i64().or_else(|| {
        ms.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f.ceil() as i64)
    })?;
    Some(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use actix_web::{App, HttpMessage as _, test as actix_test};
    use serde_json::json;

    use super::svix::decode_signing_secret;
    use super::*;
    use crate::server::store::test_support::{row_counts, test_stores, unix_now};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key() -> Vec<u8> {
        decode_signing_secret(SECRET).unwrap()
    }

    use keygate_test_support::svix::sign;

    // Arrange helpers for the handler tests.

    macro_rules! app {
        ($state:expr) => {
            actix_test::init_service(App::new().configure(configure($state))).await
        };
    }

    fn signed_headers(id: &str, body: &[u8]) -> actix_test::TestRequest {
        let ts = unix_now();
        actix_test::TestRequest::post()
            .uri(PATH)
            .insert_header(("svix-id", id))
            .insert_header(("svix-timestamp", ts.to_string()))
            .insert_header(("svix-signature", sign(&key(), id, ts, body)))
            .insert_header(("content-type", "application/json"))
    }

    fn signed_request(id: &str, body: &[u8]) -> actix_test::TestRequest {
        signed_headers(id, body).set_payload(body.to_vec())
    }

    async fn states() -> Vec<WebhookState> {
        test_stores()
            .await
            .unwrap()
            .into_iter()
            .map(|store| {
                let revocations = RevocationSet::default();
                WebhookState {
                    secret: key(),
                    store,
                    revocations: revocations.clone(),
                    clock: crate::clock::system(),
                    sockets: Sockets::new(
                        crate::server::metrics::Metrics::new().unwrap(),
                        revocations,
                    ),
                }
            })
            .collect()
    }

    fn user_event(kind: &str, id: &str, first_name: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "object": "event",
            "data": {
                "id": id,
                "object": "user",
                "first_name": first_name,
                "last_name": "Lovelace",
                "image_url": "https://img.clerk.com/ada.png",
                "primary_email_address_id": "idn_2",
                "email_addresses": [
                    {"id": "idn_1", "object": "email_address", "email_address": "old@example.com"},
                    {"id": "idn_2", "object": "email_address", "email_address": "ada@example.com"}
                ]
            }
        })
        .to_string()
        .into_bytes()
    }

    async fn body_json(resp: actix_web::dev::ServiceResponse) -> serde_json::Value {
        serde_json::from_slice(&actix_test::read_body(resp).await).unwrap()
    }

    // Event parsing.

    #[test]
    fn session_expiry_comes_from_expire_at_in_milliseconds() {
        let now = 1_700_000_000;
        let parse = |data: serde_json::Value| {
            let body = json!({"type": "session.revoked", "data": data}).to_string();
            parse_event(body.as_bytes(), now).unwrap().effect
        };
        let revoke = |expires_at| WebhookEffect::RevokeSession {
            session_id: "sess_1".to_owned(),
            expires_at,
        };
        assert_eq!(
            parse(json!({"id": "sess_1", "expire_at": 1_700_086_400_001_i64})),
            revoke(1_700_086_401 + REVOCATION_MARGIN_SECS)
        );
        assert_eq!(
            parse(json!({"id": "sess_1", "expire_at": 1_700_086_400_000.0})),
            revoke(1_700_086_400 + REVOCATION_MARGIN_SECS)
        );
        // Already expired: still kept for the margin from now.
        assert_eq!(
            parse(json!({"id": "sess_1", "expire_at": 1_000})),
            revoke(now + REVOCATION_MARGIN_SECS)
        );
        assert_eq!(
            parse(json!({"id": "sess_1"})),
            revoke(now + DEFAULT_REVOCATION_SECS)
        );
        assert_eq!(
            parse(json!({"id": "sess_1", "expire_at": null})),
            revoke(now + DEFAULT_REVOCATION_SECS)
        );
    }

    #[test]
    fn primary_email_is_the_one_named_by_primary_email_address_id() {
        let body = json!({"type": "user.updated", "data": {
            "id": "user_1",
            "primary_email_address_id": null,
            "email_addresses": [{"id": "idn_1", "email_address": "a@example.com"}],
            "first_name": null
        }})
        .to_string();
        assert_eq!(
            parse_event(body.as_bytes(), 0).unwrap().effect,
            WebhookEffect::UpsertProfile(Profile {
                user_id: "user_1".to_owned(),
                email: None,
                first_name: None,
                last_name: None,
                image_url: None,
            })
        );
    }

    #[test]
    fn malformed_events_are_invalid_payloads() {
        for body in [
            "not json",
            "[]",
            r#"{"data": {}}"#,
            r#"{"type": 5}"#,
            r#"{"type": "user.created"}"#,
            r#"{"type": "user.created", "data": {"first_name": "Ada"}}"#,
            r#"{"type": "user.created", "data": {"id": ""}}"#,
            r#"{"type": "user.updated", "data": {"id": "user_1", "first_name": 7}}"#,
            r#"{"type": "user.deleted", "data": {"deleted": true}}"#,
            r#"{"type": "session.ended", "data": {"id": 12}}"#,
            r#"{"type": "session.revoked", "data": {"id": "sess_1", "expire_at": "tomorrow"}}"#,
        ] {
            assert!(
                matches!(
                    parse_event(body.as_bytes(), 0),
                    Err(WebhookError::InvalidPayload(_))
                ),
                "{body}"
            );
        }
        // Unknown types need nothing but their type.
        assert_eq!(
            parse_event(br#"{"type": "organization.created"}"#, 0)
                .unwrap()
                .effect,
            WebhookEffect::Nothing
        );
    }

    // The route.

    #[actix_rt::test]
    async fn user_events_upsert_and_delete_the_profile() {
        for state in states().await {
            let store = state.store.clone();
            let app = app!(state);

            let resp = actix_test::call_service(
                &app,
                signed_request("msg_1", &user_event("user.created", "user_1", "Ada")).to_request(),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert_eq!(
                store.profile("user_1").await.unwrap(),
                Some(Profile {
                    user_id: "user_1".to_owned(),
                    email: Some("ada@example.com".to_owned()),
                    first_name: Some("Ada".to_owned()),
                    last_name: Some("Lovelace".to_owned()),
                    image_url: Some("https://img.clerk.com/ada.png".to_owned()),
                })
            );

            let resp = actix_test::call_service(
                &app,
                signed_request("msg_2", &user_event("user.updated", "user_1", "Augusta"))
                    .to_request(),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            let profile = store.profile("user_1").await.unwrap().unwrap();
            assert_eq!(profile.first_name.as_deref(), Some("Augusta"));

            let deleted = json!({"type": "user.deleted", "data": {"id": "user_1", "deleted": true, "object": "user"}});
            let resp = actix_test::call_service(
                &app,
                signed_request("msg_3", deleted.to_string().as_bytes()).to_request(),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert_eq!(store.profile("user_1").await.unwrap(), None);
        }
    }

    #[actix_rt::test]
    async fn session_events_revoke_in_the_database_and_in_memory() {
        for state in states().await {
            let store = state.store.clone();
            let revocations = state.revocations.clone();
            let app = app!(state);
            let now = unix_now();

            for (i, kind) in ["session.ended", "session.removed", "session.revoked"]
                .into_iter()
                .enumerate()
            {
                let sid = format!("sess_{i}");
                let body = json!({"type": kind, "data": {
                    "id": sid, "object": "session", "user_id": "user_1",
                    "status": "revoked", "expire_at": (now + 86_400) * 1000
                }});
                let resp = actix_test::call_service(
                    &app,
                    signed_request(&format!("msg_{i}"), body.to_string().as_bytes()).to_request(),
                )
                .await;
                assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{kind}");
                assert!(revocations.is_revoked(&sid), "{kind}");
            }

            let mut revoked = store.revoked_sessions(now).await.unwrap();
            revoked.sort();
            assert_eq!(revoked, ["sess_0", "sess_1", "sess_2"]);
            // Still revoked just after the session's own expiry, gone after the margin.
            assert_eq!(
                store
                    .revoked_sessions(now + 86_400 + 60)
                    .await
                    .unwrap()
                    .len(),
                3
            );
            assert!(
                store
                    .revoked_sessions(now + 86_400 + REVOCATION_MARGIN_SECS)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[actix_rt::test]
    async fn a_replayed_delivery_is_204_without_effect() {
        for state in states().await {
            let store = state.store.clone();
            let app = app!(state);
            let created = user_event("user.created", "user_1", "Ada");
            let resp =
                actix_test::call_service(&app, signed_request("msg_1", &created).to_request())
                    .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            store.delete_user("user_1").await.unwrap();

            let resp =
                actix_test::call_service(&app, signed_request("msg_1", &created).to_request())
                    .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            // The redelivery did not recreate the deleted row.
            assert_eq!(store.profile("user_1").await.unwrap(), None);
        }
    }

    #[actix_rt::test]
    async fn unknown_event_types_are_acknowledged_and_ignored() {
        for state in states().await {
            let store = state.store.clone();
            let app = app!(state);
            let body = json!({"type": "organization.created", "data": {"id": "org_1"}});
            let resp = actix_test::call_service(
                &app,
                signed_request("msg_1", body.to_string().as_bytes()).to_request(),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert!(
                !store
                    .record_webhook_event("msg_1", "organization.created", 0)
                    .await
                    .unwrap()
            );
        }
    }

    #[actix_rt::test]
    async fn bad_deliveries_are_400_and_write_nothing() {
        for state in states().await {
            let store = state.store.clone();
            let app = app!(state);
            let body = user_event("user.created", "user_1", "Ada");
            let ts = unix_now();
            let good_sig = sign(&key(), "msg_1", ts, &body);

            let cases: Vec<(actix_test::TestRequest, &str)> = vec![
                (
                    actix_test::TestRequest::post()
                        .uri(PATH)
                        .set_payload(body.clone()),
                    "invalid_signature",
                ),
                (
                    actix_test::TestRequest::post()
                        .uri(PATH)
                        .insert_header(("svix-id", "msg_1"))
                        .insert_header(("svix-timestamp", ts.to_string()))
                        .set_payload(body.clone()),
                    "invalid_signature",
                ),
                (
                    actix_test::TestRequest::post()
                        .uri(PATH)
                        .insert_header(("svix-id", "msg_1"))
                        .insert_header(("svix-timestamp", ts.to_string()))
                        .insert_header(("svix-signature", good_sig.clone()))
                        .set_payload(user_event("user.created", "user_2", "Ada")),
                    "invalid_signature",
                ),
                (
                    actix_test::TestRequest::post()
                        .uri(PATH)
                        .insert_header(("svix-id", "msg_1"))
                        .insert_header(("svix-timestamp", (ts - 600).to_string()))
                        .insert_header(("svix-signature", sign(&key(), "msg_1", ts - 600, &body)))
                        .set_payload(body.clone()),
                    "invalid_signature",
                ),
                (signed_request("msg_1", b"{not json"), "invalid_payload"),
                (
                    signed_request("msg_1", br#"{"type": "user.created", "data": {}}"#),
                    "invalid_payload",
                ),
            ];

            for (req, code) in cases {
                let resp = actix_test::call_service(&app, req.to_request()).await;
                assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{code}");
                let json = body_json(resp).await;
                assert_eq!(json["code"], code, "{json}");
                assert!(json["detail"].as_str().is_some_and(|d| !d.is_empty()));
                assert!(!json.to_string().contains("whsec_"));
            }
            assert_eq!(
                row_counts(&store).await,
                [0, 0, 0],
                "a rejected delivery wrote to the database"
            );

            // The signed delivery still goes through afterwards: nothing recorded msg_1.
            let resp =
                actix_test::call_service(&app, signed_request("msg_1", &body).to_request()).await;
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert!(store.profile("user_1").await.unwrap().is_some());
        }
    }

    #[actix_rt::test]
    async fn bodies_over_256_kib_are_413() {
        let state = states().await.swap_remove(0);
        let store = state.store.clone();
        let app = app!(state);

        let mut big = br#"{"type": "user.created", "pad": ""#.to_vec();
        big.resize(MAX_BODY_BYTES, b'a');
        big.extend_from_slice(br#""}"#);
        let resp =
            actix_test::call_service(&app, signed_request("msg_big", &big).to_request()).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let json = body_json(resp).await;
        assert_eq!(json["code"], "payload_too_large");

        // Without a Content-Length the body is cut off at the limit while streaming.
        let (req, _) = signed_headers("msg_big", &big)
            .to_request()
            .replace_payload(actix_web::dev::Payload::from(web::Bytes::from(big)));
        assert!(req.headers().get(CONTENT_LENGTH).is_none());
        let resp = actix_test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

        // Exactly at the limit is fine (and then fails on its content, not its size).
        let mut at_limit = b"{".to_vec();
        at_limit.resize(MAX_BODY_BYTES, b' ');
        let resp =
            actix_test::call_service(&app, signed_request("msg_limit", &at_limit).to_request())
                .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(row_counts(&store).await, [0, 0, 0], "nothing was written");
    }

    #[actix_rt::test]
    async fn a_failing_database_is_503_and_generic() {
        let state = states().await.swap_remove(0);
        state.store.close().await;
        let app = app!(state);
        let resp = actix_test::call_service(
            &app,
            signed_request("msg_1", &user_event("user.created", "user_1", "Ada")).to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body_json(resp).await,
            json!({"detail": "Service unavailable", "code": "unavailable"})
        );
    }

    #[actix_rt::test]
    async fn other_methods_are_not_served() {
        let state = states().await.swap_remove(0);
        let app = app!(state);
        let resp =
            actix_test::call_service(&app, actix_test::TestRequest::get().uri(PATH).to_request())
                .await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
