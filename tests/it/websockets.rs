//! WebSockets that end with their session (SPEC §14): a revoked session's sockets are
//! closed within a second with 1008 on both sides — through a webhook to the same
//! replica, and on PostgreSQL through another replica — while other sessions' stay
//! open; a deleted user's too; `GATEWAY_WS_MAX_SECS`; 1001 at shutdown; the metrics.
//! Asserted on what the client got and what the recording upstream saw.

use std::time::{Duration, Instant};

use awc::ws::{CloseCode, Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};

use crate::common::app::client;
use crate::common::db::{database_urls, is_postgres};
use crate::common::upstream::TestUpstream;
use crate::common::*;

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

const OPEN: &str = "keygate_websockets_open";
const WEBHOOK: &str = "/_keygate/webhooks/clerk";

fn closed(reason: &str) -> String {
    format!("keygate_websockets_closed_total{{reason=\"{reason}\"}}")
}

async fn gateway(upstream: &TestUpstream, extra: &[(&str, &str)]) -> TestApp {
    let secret = svix::secret();
    let mut vars = vec![
        ("JWT_SECRET", SECRET),
        ("UPSTREAM_URL", upstream.url.as_str()),
        ("CLERK_WEBHOOK_SECRET", secret.as_str()),
    ];
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

/// A socket through `base` for `user` (session `sess_<user>`), checked with one echo.
async fn open(base: &str, user: &str) -> Socket {
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let token = format!("Bearer {}", hs256(&claims(user)));
    let (response, socket) = client()
        .ws(url)
        .set_header("Authorization", token.as_str())
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    let mut socket = socket;
    assert_echo(&mut socket, user).await;
    socket
}

/// The socket still carries messages both ways.
async fn assert_echo(socket: &mut Socket, user: &str) {
    socket.send(Message::Text("ping".into())).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("no echo within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(frame, Frame::Text(format!("{user}: ping").into()));
}

/// The next frame the client gets, within `within`: it must be a close frame; its code
/// and reason.
async fn close_of(socket: &mut Socket, within: Duration) -> (CloseCode, String) {
    let frame = tokio::time::timeout(within, socket.next())
        .await
        .unwrap_or_else(|_| panic!("no close frame within {within:?}"))
        .expect("the connection ended without a close frame")
        .unwrap();
    match frame {
        Frame::Close(Some(reason)) => (reason.code, reason.description.unwrap_or_default()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

async fn wait_metric(app: &TestApp, sample: &str, value: f64) {
    let mut last = f64::NAN;
    let reached = eventually(Duration::from_secs(5), async || {
        last = metric_value(&app.get_text("/_keygate/metrics").await, sample);
        last == value
    })
    .await;
    assert!(reached, "{sample} stayed {last}, expected {value}");
}

async fn revoke(app: &TestApp, path: &str, user: &str) {
    let sid = format!("sess_{user}");
    let body = svix::session_event("session.revoked", &sid, user);
    let reply = svix::deliver_to(app, path, &format!("msg_{sid}"), &body).await;
    assert_eq!(reply.status, 204, "revoking {sid}: {:?}", reply.body);
}

#[actix_rt::test]
async fn a_revoked_sessions_socket_closes_within_a_second_on_both_sides() {
    let upstream = TestUpstream::start().await;
    let app = gateway(&upstream, &[]).await;
    let mut a = open(&app.base, "user_wsa").await;
    let mut b = open(&app.base, "user_wsb").await;
    // A second socket of the same session closes with it.
    let mut a2 = open(&app.base, "user_wsa").await;
    wait_metric(&app, OPEN, 3.0).await;

    let revoked = Instant::now();
    revoke(&app, WEBHOOK, "user_wsa").await;
    for socket in [&mut a, &mut a2] {
        let (code, reason) = close_of(socket, Duration::from_secs(1)).await;
        assert_eq!(
            (code, reason.as_str()),
            (CloseCode::Policy, "session revoked")
        );
    }
    assert!(
        revoked.elapsed() < Duration::from_secs(1),
        "{:?}",
        revoked.elapsed()
    );
    // The upstream got keygate's close frame (masked, as from a client) for both.
    assert!(
        eventually(Duration::from_secs(1), async || upstream
            .closes()
            .iter()
            .filter(|c| *c == "1008 session revoked")
            .count()
            == 2)
        .await,
        "{:?}",
        upstream.closes()
    );
    // The client answers the close; the connection then ends.
    let _ = a.send(Message::Close(None)).await;
    let _ = a2.send(Message::Close(None)).await;

    // The other session's socket is untouched.
    assert_echo(&mut b, "user_wsb").await;
    wait_metric(&app, OPEN, 1.0).await;
    wait_metric(&app, &closed("revoked"), 2.0).await;
    // The revoked token opens nothing any more.
    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let token = format!("Bearer {}", hs256(&claims("user_wsa")));
    let refused = client()
        .ws(url)
        .set_header("Authorization", token.as_str())
        .connect()
        .await;
    assert!(refused.is_err());

    // A client that closes is counted as such.
    b.send(Message::Close(None)).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), b.next()).await;
    assert!(
        matches!(answer, Ok(Some(Ok(Frame::Close(_))))),
        "{answer:?}"
    );
    wait_metric(&app, OPEN, 0.0).await;
    wait_metric(&app, &closed("client"), 1.0).await;
    wait_metric(&app, &closed("upstream"), 0.0).await;
}

#[actix_rt::test]
async fn a_deleted_users_sockets_close_as_revoked() {
    let upstream = TestUpstream::start().await;
    let app = gateway(&upstream, &[]).await;
    let mut gone = open(&app.base, "user_gone").await;
    let mut kept = open(&app.base, "user_kept").await;
    let body = serde_json::json!({
        "data": {"deleted": true, "id": "user_gone", "object": "user"},
        "object": "event",
        "type": "user.deleted"
    })
    .to_string()
    .into_bytes();
    let started = Instant::now();
    let reply = svix::deliver_to(&app, WEBHOOK, "msg_user_gone", &body).await;
    assert_eq!(reply.status, 204);
    let (code, reason) = close_of(&mut gone, Duration::from_secs(1)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "session revoked")
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_echo(&mut kept, "user_kept").await;
    wait_metric(&app, &closed("revoked"), 1.0).await;
}

#[actix_rt::test]
async fn sockets_end_after_gateway_ws_max_secs() {
    let upstream = TestUpstream::start().await;
    let app = gateway(&upstream, &[("GATEWAY_WS_MAX_SECS", "1")]).await;
    let opened = Instant::now();
    let mut socket = open(&app.base, "user_old").await;
    let (code, reason) = close_of(&mut socket, Duration::from_secs(3)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "session expired")
    );
    assert!(opened.elapsed() >= Duration::from_secs(1));
    assert!(
        eventually(Duration::from_secs(2), async || upstream
            .closes()
            .contains(&"1008 session expired".to_string()))
        .await,
        "{:?}",
        upstream.closes()
    );
    wait_metric(&app, &closed("max_age"), 1.0).await;
    wait_metric(&app, OPEN, 0.0).await;
}

#[actix_rt::test]
async fn an_upstream_that_closes_is_counted_as_such() {
    let upstream = TestUpstream::start().await;
    let app = gateway(&upstream, &[]).await;
    let mut socket = open(&app.base, "user_up").await;
    drop(upstream);
    // The upstream's server stops: its connection ends, and so does the client's.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    assert!(ended.is_ok());
    wait_metric(&app, &closed("upstream"), 1.0).await;
    wait_metric(&app, OPEN, 0.0).await;
}

#[actix_rt::test]
async fn on_postgres_a_revocation_through_another_replica_closes_the_socket() {
    let Some(url) = database_urls()
        .await
        .into_iter()
        .find(|url| is_postgres(url))
    else {
        skip_without_postgres("websockets on another replica");
        return;
    };
    let upstream = TestUpstream::start().await;
    let secret = svix::secret();
    let vars = |webhooks: bool| {
        let mut vars = vec![
            ("JWT_SECRET", SECRET.to_string()),
            ("UPSTREAM_URL", upstream.url.clone()),
            ("DATABASE_URL", url.clone()),
            // The poll is the safety net; the push must do it well within this.
            ("REVOCATION_POLL_SECS", "30".to_string()),
        ];
        if webhooks {
            vars.push(("CLERK_WEBHOOK_SECRET", secret.clone()));
        }
        vars
    };
    let (owned_a, owned_b) = (vars(true), vars(false));
    let a_vars: Vec<(&str, &str)> = owned_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let b_vars: Vec<(&str, &str)> = owned_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = spawn_app(&a_vars).await;
    let b = spawn_app(&b_vars).await;
    wait_metric(&b, "keygate_revocation_listener_up", 1.0).await;
    let mut on_b = open(&b.base, "user_rep_ws").await;
    let mut other = open(&b.base, "user_rep_other").await;

    let revoked = Instant::now();
    revoke(&a, WEBHOOK, "user_rep_ws").await;
    let (code, reason) = close_of(&mut on_b, Duration::from_secs(2)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "session revoked")
    );
    let took = revoked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after the webhook"
    );
    assert!(
        eventually(Duration::from_secs(1), async || upstream
            .closes()
            .contains(&"1008 session revoked".to_string()))
        .await,
        "{:?}",
        upstream.closes()
    );
    assert_echo(&mut other, "user_rep_other").await;
    wait_metric(&b, &closed("revoked"), 1.0).await;
    wait_metric(&a, &closed("revoked"), 0.0).await;
    crate::common::db::remove_database(&url).await;
}

#[actix_rt::test]
async fn at_shutdown_open_sockets_get_1001_after_the_drain() {
    let upstream = TestUpstream::start().await;
    let mut keygate = spawn_keygate(
        &["serve"],
        &[
            ("JWT_SECRET", SECRET),
            ("UPSTREAM_URL", upstream.url.as_str()),
            ("SHUTDOWN_DRAIN_SECS", "1"),
        ],
    );
    let health = format!("{}/_keygate/healthz", keygate.base);
    let up = eventually(Duration::from_secs(10), async || {
        client()
            .get(&health)
            .send()
            .await
            .is_ok_and(|res| res.status() == 200)
    })
    .await;
    assert!(up, "keygate did not start: {:?}", keygate.stderr_lines());
    let mut socket = open(&keygate.base, "user_bye").await;
    let signalled = Instant::now();
    keygate.signal("TERM");
    let (code, reason) = close_of(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Away, "server shutting down")
    );
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "closed before the drain: {:?}",
        signalled.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(2), async || upstream
            .closes()
            .contains(&"1001 server shutting down".to_string()))
        .await,
        "{:?}",
        upstream.closes()
    );
    let _ = socket.send(Message::Close(None)).await;
    // The graceful stop does not wait out its timeout for the socket.
    let status = keygate.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[actix_rt::test]
async fn the_close_frame_waits_for_the_frame_in_flight() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let upstream = TestUpstream::start().await;
    let app = gateway(&upstream, &[]).await;
    let token = hs256(&claims("user_mid"));
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 8192, "no end of the response head");
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    wait_metric(&app, OPEN, 1.0).await;

    // A masked text frame of 1000 bytes, of which only the first 10 are sent.
    let key = [7u8, 1, 2, 9];
    let payload: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
    let masked: Vec<u8> = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    let mut frame = vec![0x81, 0x80 | 126, 0x03, 0xe8];
    frame.extend_from_slice(&key);
    frame.extend_from_slice(&masked);
    let (first, rest) = frame.split_at(8 + 10);
    tcp.write_all(first).await.unwrap();
    // The same socket, seen from the upstream: the frame has not ended yet.
    revoke(&app, WEBHOOK, "user_mid").await;
    // The client's side is between frames: its close frame comes at once.
    let mut close = [0u8; 19];
    tokio::time::timeout(Duration::from_secs(1), tcp.read_exact(&mut close))
        .await
        .expect("no close frame within 1 s")
        .unwrap();
    assert_eq!(&close[..4], &[0x88, 17, 0x03, 0xf0]);
    assert_eq!(&close[4..], b"session revoked");
    // The upstream's close frame waits for the end of the frame in flight, so the
    // upstream reads a whole message and then keygate's close, not a broken frame.
    tcp.write_all(rest).await.unwrap();
    assert!(
        eventually(Duration::from_secs(1), async || upstream
            .closes()
            .contains(&"1008 session revoked".to_string()))
        .await,
        "{:?}",
        upstream.closes()
    );
    wait_metric(&app, OPEN, 0.0).await;
}
