//! The proxy's HTTP client: hyper's pooled HTTP/1.1 client, one per worker, and the
//! crossing between actix-web's `http` 0.2 types and hyper's `http` 1 types.
//!
//! hyper rather than awc: awc's HTTP/1 client makes a new codec configuration for every
//! request, and each one spawns a date-updating task and arms a timer — a task, a timer
//! and a wake-up of the runtime per proxied request, which no setting of awc avoids.
//! hyper's client keeps nothing per request but the request, and it is the HTTP stack
//! the OTLP exporter already brings.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::http::header as actix_header;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt as _};
use http_body::{Body, Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;

/// Connects to an `http` or `https` upstream (TLS with Mozilla's roots).
pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// One worker's pooled client.
pub(crate) type UpstreamClient = Client<Connector, Outgoing>;

/// How long an idle upstream connection is kept for the next request.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// At most this many idle connections are kept per worker.
const MAX_IDLE: usize = 256;

/// The connector every worker's client is made from; fails only when TLS cannot be set
/// up, which the start reports.
pub(crate) fn connector(connect_timeout: Duration) -> Result<Connector, rustls::Error> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    // The scheme is the TLS layer's to check: it passes `https` on as TCP.
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// A client on the current worker: its connections are driven by the worker's runtime.
pub(crate) fn client(connector: Connector) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(KEEP_ALIVE)
        .pool_max_idle_per_host(MAX_IDLE)
        .build(connector)
}

/// What went wrong with a request body on its way to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    /// Past `GATEWAY_MAX_BODY_BYTES`.
    TooLarge,
    /// The client's framing broke (or the client went away mid-body).
    Broken,
}

/// Why a body stopped early, for hyper's error; the proxy learns the cause from the
/// [`Pump`], not from this.
#[derive(Debug, thiserror::Error)]
#[error("the request body ended early")]
pub(crate) struct BodyEnded;

/// The request body as hyper sends it. hyper's client wants a body it could move to
/// another thread, and the client's payload is actix's, bound to the worker's: the
/// payload is read by a [`Pump`] and its chunks handed over a short channel.
pub(crate) struct Outgoing {
    chunks: Option<mpsc::Receiver<Result<Bytes, BodyEnded>>>,
    hint: SizeHint,
}

impl Outgoing {
    /// No body.
    pub(crate) fn empty() -> Outgoing {
        Outgoing {
            chunks: None,
            hint: SizeHint::with_exact(0),
        }
    }

    /// `payload`, cut off past `max` bytes; `len` is its declared length (`None`:
    /// chunked). The [`Pump`] must run beside the request for the body to flow.
    pub(crate) fn streamed<S>(payload: S, len: Option<u64>, max: u64) -> (Outgoing, Pump<S>)
    where
        S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    {
        let (tx, rx) = mpsc::channel(2);
        let hint = match len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        };
        let pump = Pump {
            body: Checked {
                inner: payload,
                seen: 0,
                max,
                fault: None,
            },
            tx,
        };
        let body = Outgoing {
            chunks: Some(rx),
            hint,
        };
        (body, pump)
    }
}

/// Moves the client's payload to hyper's body. It runs inside the request's own task,
/// not a task of its own: a payload that breaks must be seen while actix-web still
/// waits for the answer, and it gives up on the connection right after.
pub(crate) struct Pump<S> {
    body: Checked<S>,
    tx: mpsc::Sender<Result<Bytes, BodyEnded>>,
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Pump<S> {
    /// Runs until the payload ends (`None`), hyper stops reading it because the upstream
    /// answered or went away (`None`), or the client's body is at fault.
    pub(crate) async fn run(mut self) -> Option<BodyFault> {
        while let Some(chunk) = self.body.next().await {
            match chunk {
                Ok(chunk) => {
                    if self.tx.send(Ok(chunk)).await.is_err() {
                        return None;
                    }
                }
                Err(_) => {
                    // hyper aborts the upstream request on this, so that a cut body is
                    // never taken for a whole one.
                    let _ = self.tx.try_send(Err(BodyEnded));
                    return self.body.fault;
                }
            }
        }
        None
    }
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BodyEnded;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyEnded>>> {
        let Some(chunks) = self.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        match chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(chunk.map(Frame::data))),
            Poll::Ready(None) => {
                self.chunks = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// The request body, cut off (with an error) past the limit; `fault` says why it ended
/// early.
struct Checked<S> {
    inner: S,
    seen: u64,
    max: u64,
    fault: Option<BodyFault>,
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for Checked<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.max {
                    self.fault = Some(BodyFault::TooLarge);
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.fault = Some(BodyFault::Broken);
                Poll::Ready(Some(Err(e)))
            }
            other => other,
        }
    }
}

/// One of actix-web's headers as hyper's. Names and values valid on one side are valid
/// on the other: the two `http` crates share the grammar.
pub(crate) fn to_hyper(
    name: &actix_header::HeaderName,
    value: &actix_header::HeaderValue,
) -> Option<(http::HeaderName, http::HeaderValue)> {
    let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
    let value = http::HeaderValue::from_bytes(value.as_bytes()).ok()?;
    Some((name, value))
}

/// One of hyper's headers as actix-web's.
pub(crate) fn from_hyper(
    name: &http::HeaderName,
    value: &http::HeaderValue,
) -> Option<(actix_header::HeaderName, actix_header::HeaderValue)> {
    let name = actix_header::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
    let value = actix_header::HeaderValue::from_bytes(value.as_bytes()).ok()?;
    Some((name, value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_cross_both_ways_as_they_are() {
        for (name, value) in [
            ("content-type", &b"text/plain"[..]),
            ("x-custom", b"a, b"),
            ("set-cookie", b"s=1; Path=/"),
            ("x-opaque", b"caf\xe9"),
        ] {
            let name = actix_header::HeaderName::from_static(name);
            let value = actix_header::HeaderValue::from_bytes(value).unwrap();
            let (theirs, their_value) = to_hyper(&name, &value).unwrap();
            assert_eq!(theirs.as_str(), name.as_str());
            assert_eq!(their_value.as_bytes(), value.as_bytes());
            assert_eq!(from_hyper(&theirs, &their_value), Some((name, value)));
        }
    }
}
