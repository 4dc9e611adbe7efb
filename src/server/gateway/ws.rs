//! WebSocket upgrades: a handshake is a proxied request like any other — decided by
//! the same rules, forwarded with the same header policy ([`super::proxy`]) — whose
//! answer, when it is `101`, turns the two connections into one tunnel of bytes.
//!
//! The upstream answers the client's own handshake (its `Sec-WebSocket-Accept`,
//! protocol and extensions come back as it sent them), so keygate neither parses nor
//! re-frames what follows. An answer other than `101` is passed back as it is.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::Framed;
use actix_http::h1::{ClientCodec, ClientPayloadCodec};
use actix_http::{ConnectionType, RequestHead, ResponseHead};
use actix_service::Service as _;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri, Version};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use awc::BoxedSocket;
use awc::error::SendRequestError;
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::GatewayError;

/// Whether `req` asks for a WebSocket: an `Upgrade` header naming `websocket`, whatever
/// its method (a non-`GET` one is refused, never turned into a `GET`).
pub fn requested(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::UPGRADE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// `Err(InvalidUpgrade)` for a WebSocket upgrade that is not a `GET` (RFC 6455 §4.1).
pub fn check_method(req: &HttpRequest, method: &str) -> Result<(), GatewayError> {
    if requested(req) && method != Method::GET.as_str() {
        return Err(GatewayError::InvalidUpgrade);
    }
    Ok(())
}

/// Whether the connection of `req` can become a tunnel: a `GET` whose `Connection`
/// header asks for the upgrade (actix-http then hands over the bytes that follow).
pub fn tunnels(req: &HttpRequest) -> bool {
    req.method() == Method::GET && req.head().upgrade() && requested(req)
}

/// What opening a tunnel gives: the upstream's response head and the connection, framed
/// for reading a body should the answer not be `101`.
type Opened = (ResponseHead, Framed<BoxedSocket, ClientCodec>);

/// Opens tunnels to the upstream: a connection of its own per handshake, never pooled.
#[derive(Clone)]
pub struct Tunnels {
    open: Rc<dyn Fn(RequestHead) -> LocalBoxFuture<'static, Result<Opened, SendRequestError>>>,
}

impl Tunnels {
    /// Tunnels over a connector with the proxy's connect timeout.
    pub fn new(connect_timeout: Duration) -> Tunnels {
        let connector = Rc::new(awc::Connector::new().timeout(connect_timeout).finish());
        Tunnels {
            open: Rc::new(move |head: RequestHead| {
                let connector = connector.clone();
                Box::pin(async move {
                    let connect = awc::Connect {
                        uri: head.uri.clone(),
                        addr: None,
                    };
                    let connection = connector.call(connect).await?;
                    let (response, framed) = connection.open_tunnel(head).await?;
                    let framed = framed.into_map_io(|io| Box::new(io) as BoxedSocket);
                    Ok((response, framed))
                })
            }),
        }
    }
}

/// Sends a handshake to `url` with the forwarded `headers` and relays the
/// answer: a tunnel on `101`, else the answer as it is.
pub async fn tunnel(
    payload: web::Payload,
    tunnels: &Tunnels,
    url: &str,
    mut headers: HeaderMap,
    timeout: Duration,
) -> Result<(HttpResponse, u16), GatewayError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| GatewayError::UpstreamUnavailable(format!("not a URL: {url}")))?;
    // The handshake's own hop-by-hop headers, which the header policy removed.
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Some(authority) = uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(header::HOST, host);
    }
    let mut head = RequestHead::default();
    head.method = Method::GET;
    head.uri = uri;
    head.version = Version::HTTP_11;
    head.headers = headers;
    // actix-http writes `Connection` from the connection type, not from the map.
    head.set_connection_type(ConnectionType::Upgrade);

    let (response, framed) = match tokio::time::timeout(timeout, (tunnels.open)(head)).await {
        Err(_) => return Err(GatewayError::UpstreamTimeout),
        Ok(Err(e)) => return Err(super::proxy::send_error(e)),
        Ok(Ok(opened)) => opened,
    };
    let status = response.status;
    let mut out = HttpResponse::build(status);
    let skip = super::proxy::HopByHop::of(&response.headers);
    for (name, value) in response.headers.iter() {
        if !skip.contains(name) && name != header::CONTENT_LENGTH {
            out.append_header((name.clone(), value.clone()));
        }
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let length = response
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = AnswerBody(framed.into_map_codec(ClientCodec::into_payload_codec));
        let reply = match length {
            Some(len) => out
                .no_chunking(len)
                .body(actix_web::body::SizedStream::new(len, body)),
            None => out.streaming(body),
        };
        return Ok((reply, status.as_u16()));
    }

    let parts = framed.into_parts();
    let (upstream_read, mut upstream_write) = tokio::io::split(parts.io);
    let early = parts.read_buf.freeze();
    let from_upstream = futures_util::stream::iter((!early.is_empty()).then_some(Ok(early)))
        .chain(read_chunks(upstream_read));
    let mut from_client = payload;
    actix_web::rt::spawn(async move {
        while let Some(Ok(chunk)) = from_client.next().await {
            if upstream_write.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The client is gone: end the upstream's side too, so its reads end.
        let _ = upstream_write.shutdown().await;
    });
    out.upgrade("websocket");
    Ok((out.streaming(from_upstream), status.as_u16()))
}

/// What `io` sends, chunk by chunk, until it ends or fails.
fn read_chunks<R: AsyncRead + Unpin>(io: R) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some(io), |io| async move {
        let mut io = io?;
        let mut chunk = actix_web::web::BytesMut::with_capacity(8192);
        match io.read_buf(&mut chunk).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(chunk.freeze()), Some(io))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// The body of an answer that was not `101`, as the upstream sent it.
struct AnswerBody(Framed<BoxedSocket, ClientPayloadCodec>);

impl Stream for AnswerBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.0).poll_next(cx) {
            Poll::Ready(Some(Ok(Some(chunk)))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Ok(None))) | Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}
