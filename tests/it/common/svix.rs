//! Clerk webhook deliveries signed the way Svix signs them: HMAC-SHA256 keyed
//! with the base64-decoded part of `whsec_…`, over `{id}.{timestamp}.{body}`.

use serde_json::json;

use super::app::{Reply, TestApp};
use super::tokens::now;

/// The HMAC key behind [`secret`].
pub const SIGNING_KEY: &[u8] = b"keygate-integration-test-signing-key";
/// Another key, for signatures that must not verify.
pub const OTHER_KEY: &[u8] = b"some-other-endpoints-signing-key!!!!";

/// The `CLERK_WEBHOOK_SECRET` value for [`SIGNING_KEY`], as Clerk's dashboard shows it.
pub fn secret() -> String {
    keygate_test_support::svix::secret(SIGNING_KEY)
}

pub use keygate_test_support::svix::sign;

/// A delivery's three Svix headers, each of which a test may drop or replace.
#[derive(Debug, Clone)]
pub struct Headers {
    /// `svix-id`.
    pub id: Option<String>,
    /// `svix-timestamp`.
    pub timestamp: Option<String>,
    /// `svix-signature`.
    pub signature: Option<String>,
}

impl Headers {
    /// Correct headers for `body` under `id`, signed now with [`SIGNING_KEY`].
    pub fn signed(id: &str, body: &[u8]) -> Headers {
        Headers::signed_at(id, now(), body)
    }

    /// Correct headers for `body` under `id`, signed at `timestamp`.
    pub fn signed_at(id: &str, timestamp: i64, body: &[u8]) -> Headers {
        Headers {
            id: Some(id.to_owned()),
            timestamp: Some(timestamp.to_string()),
            signature: Some(sign(SIGNING_KEY, id, timestamp, body)),
        }
    }
}

/// `POST /webhooks/clerk` with `headers` and the raw `body`.
pub async fn post(app: &TestApp, headers: &Headers, body: &[u8]) -> Reply {
    post_to(app, "/webhooks/clerk", headers, body).await
}

/// Delivers `body` correctly signed under `id` to `path` (`/_keygate/webhooks/clerk`
/// in proxy mode).
pub async fn deliver_to(app: &TestApp, path: &str, id: &str, body: &[u8]) -> Reply {
    post_to(app, path, &Headers::signed(id, body), body).await
}

/// `POST path` with `headers` and the raw `body`.
pub async fn post_to(app: &TestApp, path: &str, headers: &Headers, body: &[u8]) -> Reply {
    let mut list = Vec::new();
    for (name, value) in [
        ("svix-id", &headers.id),
        ("svix-timestamp", &headers.timestamp),
        ("svix-signature", &headers.signature),
    ] {
        if let Some(value) = value {
            list.push((name, value.as_str()));
        }
    }
    app.post(path, &list, body.to_vec()).await
}

/// Delivers `body` correctly signed under `id`.
pub async fn deliver(app: &TestApp, id: &str, body: &[u8]) -> Reply {
    post(app, &Headers::signed(id, body), body).await
}

/// A `session.*` event shaped like Clerk's; the session expires in a week.
pub fn session_event(kind: &str, sid: &str, user: &str) -> Vec<u8> {
    let status = kind.trim_start_matches("session.");
    json!({
        "data": {
            "id": sid,
            "object": "session",
            "status": status,
            "user_id": user,
            "client_id": "client_test",
            "created_at": now() * 1000,
            "updated_at": now() * 1000,
            "last_active_at": now() * 1000,
            "abandon_at": (now() + 30 * 86400) * 1000,
            "expire_at": (now() + 7 * 86400) * 1000
        },
        "object": "event",
        "type": kind
    })
    .to_string()
    .into_bytes()
}
