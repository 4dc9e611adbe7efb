//! WebSocket upgrades on allowed routes, relayed frame by frame: keygate completes the
//! upstream's handshake first (so an upstream that refuses is an ordinary `502` and the
//! client is never upgraded), then accepts the client's and copies frames both ways
//! until either side closes.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use awc::ws::Frame;
use futures_util::{SinkExt as _, StreamExt as _};

use super::GatewayError;
use super::proxy::Upstream;
use crate::server::request_id;

/// The largest frame relayed either way.
const MAX_FRAME: usize = 1 << 20;

/// Whether `req` asks for a WebSocket.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Relays the WebSocket of `req` to `target` on the upstream, with `identity` headers.
pub async fn forward(
    req: &HttpRequest,
    payload: web::Payload,
    upstream: &Upstream,
    target: &str,
    identity: Vec<(HeaderName, HeaderValue)>,
) -> Result<HttpResponse, GatewayError> {
    let origin = upstream.origin();
    let url = match origin.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}{target}"),
        None => format!("ws://{}{target}", origin.trim_start_matches("http://")),
    };
    let mut connect = upstream.client().ws(url).max_frame_size(MAX_FRAME);
    for name in [
        header::SEC_WEBSOCKET_PROTOCOL,
        header::AUTHORIZATION,
        header::COOKIE,
        request_id::HEADER,
    ] {
        if let Some(value) = req.headers().get(&name) {
            connect = connect.set_header(name, value.clone());
        }
    }
    for (name, value) in identity {
        connect = connect.set_header(name, value);
    }
    let (upstream_response, framed) = connect
        .connect()
        .await
        .map_err(|e| GatewayError::UpstreamUnavailable(format!("WebSocket: {e}")))?;
    let (mut response, mut session, from_client) = actix_ws::handle(req, payload)
        .map_err(|e| GatewayError::UpstreamUnavailable(format!("WebSocket handshake: {e}")))?;
    if let Some(protocol) = upstream_response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, protocol.clone());
    }
    let mut from_client = from_client.max_frame_size(MAX_FRAME);
    let (mut to_upstream, mut from_upstream) = framed.split();
    actix_web::rt::spawn(async move {
        let mut client_closed = false;
        loop {
            tokio::select! {
                message = from_client.recv(), if !client_closed => match message {
                    Some(Ok(message)) => {
                        client_closed = matches!(message, Message::Close(_));
                        if to_upstream.send(message).await.is_err() {
                            break;
                        }
                    }
                    _ => {
                        let _ = to_upstream.send(Message::Close(None)).await;
                        break;
                    }
                },
                frame = from_upstream.next() => {
                    let relayed = match frame {
                        Some(Ok(Frame::Text(bytes))) => match String::from_utf8(bytes.to_vec()) {
                            Ok(text) => session.text(text).await,
                            Err(_) => break,
                        },
                        Some(Ok(Frame::Binary(bytes))) => session.binary(bytes).await,
                        Some(Ok(Frame::Continuation(item))) => session.continuation(item).await,
                        Some(Ok(Frame::Ping(bytes))) => session.ping(&bytes).await,
                        Some(Ok(Frame::Pong(bytes))) => session.pong(&bytes).await,
                        Some(Ok(Frame::Close(reason))) => {
                            let _ = session.close(reason).await;
                            break;
                        }
                        _ => {
                            let _ = session.close(None).await;
                            break;
                        }
                    };
                    if relayed.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(response)
}
