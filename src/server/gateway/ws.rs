//! WebSocket upgrades: a handshake is a proxied request like any other — decided by
//! the same rules, forwarded with the same header policy ([`super::proxy`]) — whose
//! answer, when it is `101`, turns the two connections into one tunnel of bytes.
//!
//! The upstream answers the client's own handshake (its `Sec-WebSocket-Accept`,
//! protocol and extensions come back as it sent them), so keygate never re-frames what
//! follows: it relays bytes, and only follows where frames begin (`Frames`: headers
//! read, payloads counted) so that it can put a close frame between two frames when the
//! socket must end — its session revoked, `GATEWAY_WS_MAX_SECS` passed, keygate
//! shutting down ([`super::sockets`]). An answer other than `101` is passed back as it
//! is.

use std::cell::RefCell;
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
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, web};
use awc::BoxedSocket;
use awc::error::SendRequestError;
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{Notify, watch};

use super::GatewayError;
use super::sockets::{Ending, Registration};

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
        // HTTP/1.1 only: a TLS upstream that negotiated HTTP/2 could not be tunnelled.
        let connector = Rc::new(
            awc::Connector::new()
                .timeout(connect_timeout)
                .max_http_version(Version::HTTP_11)
                .finish(),
        );
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
///
/// On `101` the socket is registered (`register`), so that its session's revocation,
/// `max_age` or the shutdown can close it.
pub async fn tunnel(
    payload: web::Payload,
    tunnels: &Tunnels,
    url: &str,
    mut headers: HeaderMap,
    timeout: Duration,
    register: impl FnOnce() -> Registration,
    max_age: Option<Duration>,
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
        Ok(Err(e)) => return Err(super::send_error(e)),
        Ok(Ok(opened)) => opened,
    };
    let status = response.status;
    let mut out = HttpResponse::build(status);
    let skip = super::headers::HopByHop::of(&response.headers);
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
    let (upstream_read, upstream_write) = tokio::io::split(parts.io);
    let early = parts.read_buf.freeze();
    let socket = Rc::new(RefCell::new(register()));
    let client_done = Rc::new(Notify::new());
    actix_web::rt::spawn(client_to_upstream(
        payload,
        upstream_write,
        socket.clone(),
        client_done.clone(),
        max_age,
    ));
    out.upgrade("websocket");
    let ending = socket.borrow().ending();
    let down = Down {
        read: upstream_read,
        early: (!early.is_empty()).then_some(early),
        frames: Frames::default(),
        ending,
        closing: None,
        grace: None,
        close_sent: false,
        socket,
        client_done,
    };
    Ok((out.streaming(upstream_to_client(down)), status.as_u16()))
}

/// How long a side that is in the middle of a frame may take to finish it once the
/// socket must close; past that its connection is cut without a close frame.
const MID_FRAME_GRACE: Duration = Duration::from_millis(500);

/// How long keygate waits for the client's answer to its close frame before it ends
/// the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The client's bytes to the upstream, as they come, until either end closes or the
/// socket must end: then, at the next frame boundary, a masked close frame to the
/// upstream, and the client's answer awaited.
async fn client_to_upstream(
    mut from_client: web::Payload,
    mut to_upstream: WriteHalf<BoxedSocket>,
    socket: Rc<RefCell<Registration>>,
    client_done: Rc<Notify>,
    max_age: Option<Duration>,
) {
    let mut ending = socket.borrow().ending();
    let mut frames = Frames::default();
    let mut closing: Option<Ending> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    let expires = max_age.map(|age| tokio::time::Instant::now() + age);
    // What the client sends after keygate's close frame: its answer, awaited below.
    let mut answer = Frames::default();
    let injected = loop {
        tokio::select! {
            biased;
            changed = ending.changed(), if closing.is_none() => {
                if changed.is_err() {
                    // The registration (and with it the sender) lives as long as this
                    // task; nothing to wait for otherwise.
                    break false;
                }
                closing = *ending.borrow_and_update();
                if let Some(end) = closing {
                    if frames.at_boundary() {
                        let _ = to_upstream.write_all(&close_frame(end, true)).await;
                        break true;
                    }
                    deadline = Some(tokio::time::Instant::now() + MID_FRAME_GRACE);
                }
            }
            () = sleep_until(expires), if closing.is_none() && expires.is_some() => {
                socket.borrow().end(Ending::MaxAge);
            }
            () = sleep_until(deadline), if deadline.is_some() => break false,
            chunk = from_client.next() => match chunk {
                Some(Ok(chunk)) => {
                    let Some(end) = closing else {
                        frames.feed(&chunk, false);
                        if frames.seen_close {
                            socket.borrow_mut().closed_by("client");
                        }
                        if to_upstream.write_all(&chunk).await.is_err() {
                            socket.borrow_mut().closed_by("upstream");
                            break false;
                        }
                        continue;
                    };
                    let until = frames.feed(&chunk, true);
                    if to_upstream.write_all(&chunk[..until]).await.is_err() {
                        break false;
                    }
                    if frames.at_boundary() {
                        let _ = to_upstream.write_all(&close_frame(end, true)).await;
                        // The client's next frames, its close answer perhaps, begin here.
                        answer.feed(&chunk[until..], false);
                        break true;
                    }
                }
                _ => {
                    socket.borrow_mut().closed_by("client");
                    break false;
                }
            },
        }
    };
    if !injected {
        // End the upstream's side too, so its reads end.
        let _ = to_upstream.shutdown().await;
    } else {
        // What the client still sends is its answer to keygate's close frame: read
        // (and dropped) until it comes, so that the connection ends cleanly.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while !answer.seen_close
                && let Some(Ok(chunk)) = from_client.next().await
            {
                answer.feed(&chunk, false);
            }
        })
        .await;
    }
    client_done.notify_one();
}

/// `sleep_until` an instant, or never.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The upstream's side of a tunnel, read into the client's response body.
struct Down {
    read: ReadHalf<BoxedSocket>,
    early: Option<Bytes>,
    frames: Frames,
    ending: watch::Receiver<Option<Ending>>,
    closing: Option<Ending>,
    grace: Option<tokio::time::Instant>,
    close_sent: bool,
    socket: Rc<RefCell<Registration>>,
    client_done: Rc<Notify>,
}

/// What the upstream sends, chunk by chunk, until it ends or the socket must end: then,
/// at the next frame boundary, an unmasked close frame to the client, whose answer the
/// other direction awaits before the connection ends.
fn upstream_to_client(down: Down) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some(down), |state| async move {
        let mut down = state?;
        if let Some(early) = down.early.take() {
            down.frames.feed(&early, false);
            return Some((Ok(early), Some(down)));
        }
        if down.close_sent {
            // The upstream got keygate's close frame too (or gets it now): its answer
            // is read and dropped until it ends the connection, as the side that
            // closes a WebSocket's TCP connection is the server (RFC 6455 §7.1.1), and
            // the client's answer is awaited by the other direction.
            let read = &mut down.read;
            let drained = async move {
                let mut sink = BytesMut::with_capacity(1024);
                while matches!(read.read_buf(&mut sink).await, Ok(n) if n > 0) {
                    sink.clear();
                }
            };
            let _ = tokio::time::timeout(
                CLOSE_WAIT,
                futures_util::future::join(drained, down.client_done.notified()),
            )
            .await;
            return None;
        }
        loop {
            let mut chunk = BytesMut::with_capacity(8192);
            tokio::select! {
                biased;
                changed = down.ending.changed(), if down.closing.is_none() => {
                    if changed.is_err() {
                        return None;
                    }
                    down.closing = *down.ending.borrow_and_update();
                    if let Some(end) = down.closing {
                        if down.frames.at_boundary() {
                            down.close_sent = true;
                            return Some((Ok(close_frame(end, false)), Some(down)));
                        }
                        down.grace = Some(tokio::time::Instant::now() + MID_FRAME_GRACE);
                    }
                }
                () = sleep_until(down.grace), if down.grace.is_some() => return None,
                read = down.read.read_buf(&mut chunk) => match read {
                    Ok(0) | Err(_) => {
                        down.socket.borrow_mut().closed_by("upstream");
                        return None;
                    }
                    Ok(_) => {
                        let chunk = chunk.freeze();
                        let Some(end) = down.closing else {
                            down.frames.feed(&chunk, false);
                            if down.frames.seen_close {
                                down.socket.borrow_mut().closed_by("upstream");
                            }
                            return Some((Ok(chunk), Some(down)));
                        };
                        let until = down.frames.feed(&chunk, true);
                        if !down.frames.at_boundary() {
                            return Some((Ok(chunk), Some(down)));
                        }
                        down.close_sent = true;
                        let mut out = BytesMut::from(&chunk[..until]);
                        out.extend_from_slice(&close_frame(end, false));
                        return Some((Ok(out.freeze()), Some(down)));
                    }
                }
            }
        }
    })
}

/// A close frame for `end`: masked with a random key toward the upstream (a client's
/// frames must be, RFC 6455 §5.3), unmasked toward the client.
fn close_frame(end: Ending, masked: bool) -> Bytes {
    let reason = end.reason().as_bytes();
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&end.code().to_be_bytes());
    payload.extend_from_slice(reason);
    // Every reason is shorter than 126 bytes: the length fits the second byte.
    let len = u8::try_from(payload.len()).unwrap_or(125).min(125);
    let mut frame = Vec::with_capacity(6 + payload.len());
    frame.push(0x88);
    if masked {
        let key: [u8; 4] = rand::random();
        frame.push(0x80 | len);
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        frame.push(len);
        frame.extend_from_slice(&payload);
    }
    Bytes::from(frame)
}

/// Where a stream of WebSocket frames is: between frames, in a frame's header, or in
/// its payload. Only headers are read (2 bytes, the extended length, the mask key);
/// payloads are counted, never unmasked or inflated, so extensions such as
/// permessage-deflate pass through untouched.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 14],
    have: usize,
    remaining: u64,
    /// Whether a close frame's header went by.
    seen_close: bool,
}

impl Frames {
    /// Whether the stream is between two frames.
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }

    /// The length of the header being read, once its first two bytes are in.
    fn header_len(&self) -> Option<usize> {
        if self.have < 2 {
            return None;
        }
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        Some(2 + extended + mask)
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(be)
            }
            short => u64::from(short),
        }
    }

    /// Reads `data` through; with `stop_at_boundary`, only up to the first frame
    /// boundary (0 when already at one). Returns how many bytes were read.
    fn feed(&mut self, data: &[u8], stop_at_boundary: bool) -> usize {
        let mut at = 0;
        loop {
            if stop_at_boundary && self.at_boundary() && at > 0 {
                return at;
            }
            if stop_at_boundary && at == 0 && self.at_boundary() {
                return 0;
            }
            let Some(rest) = data.get(at..).filter(|rest| !rest.is_empty()) else {
                return at;
            };
            if self.remaining > 0 {
                let take =
                    usize::try_from(self.remaining).map_or(rest.len(), |r| r.min(rest.len()));
                self.remaining -= take as u64;
                at += take;
                continue;
            }
            self.header[self.have] = rest[0];
            self.have += 1;
            at += 1;
            if self.header_len() == Some(self.have) {
                if self.header[0] & 0x0f == 0x8 {
                    self.seen_close = true;
                }
                self.remaining = self.payload_len();
                self.have = 0;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a peer writes it: `masked` with a fixed key, `len` payload bytes.
    fn frame(opcode: u8, len: usize, masked: bool) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let mask = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(mask | len as u8),
            126..=65535 => {
                out.push(mask | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(0x5a, len));
        out
    }

    #[test]
    fn frame_boundaries_are_found_in_any_chunking() {
        for masked in [false, true] {
            let frames = [
                frame(0x1, 5, masked),
                frame(0x2, 300, masked),
                frame(0x0, 70_000, masked),
                frame(0x9, 0, masked),
            ];
            let stream: Vec<u8> = frames.concat();
            let boundaries: Vec<usize> = frames
                .iter()
                .scan(0, |end, f| {
                    *end += f.len();
                    Some(*end)
                })
                .collect();
            for chunk in [1, 2, 3, 7, 13, 4096, stream.len()] {
                let mut cursor = Frames::default();
                let mut found = Vec::new();
                let mut offset = 0;
                for mut piece in stream.chunks(chunk) {
                    while !piece.is_empty() {
                        // Up to the next boundary, as a closing tunnel reads; from a
                        // boundary, one byte into the next frame.
                        let n = match cursor.feed(piece, true) {
                            0 => cursor.feed(&piece[..1], false),
                            n => n,
                        };
                        offset += n;
                        piece = &piece[n..];
                        if cursor.at_boundary() {
                            found.push(offset);
                        }
                    }
                }
                assert_eq!(found, boundaries, "chunks of {chunk}");
                assert!(!cursor.seen_close);
            }
        }
        let mut cursor = Frames::default();
        let close = close_frame(Ending::Revoked, true);
        assert_eq!(cursor.feed(&close, false), close.len());
        assert!(cursor.seen_close && cursor.at_boundary());
    }

    #[test]
    fn a_server_reads_the_masked_close_frame() {
        use actix_codec::Decoder as _;
        let mut codec = awc::ws::Codec::new();
        let mut buf = BytesMut::from(&close_frame(Ending::MaxAge, true)[..]);
        let frame = codec.decode(&mut buf);
        assert!(
            matches!(&frame, Ok(Some(awc::ws::Frame::Close(Some(reason)))) if reason.description.as_deref() == Some("session expired")),
            "{frame:?}"
        );
    }

    #[test]
    fn close_frames_say_why() {
        let to_client = close_frame(Ending::Revoked, false);
        assert_eq!(&to_client[..4], &[0x88, 17, 0x03, 0xf0]);
        assert_eq!(&to_client[4..], b"session revoked");
        let to_upstream = close_frame(Ending::Shutdown, true);
        assert_eq!(to_upstream[1], 0x80 | 22);
        let key = &to_upstream[2..6];
        let payload: Vec<u8> = to_upstream[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(&payload[..2], &1001_u16.to_be_bytes());
        assert_eq!(&payload[2..], b"server shutting down");
    }
}
