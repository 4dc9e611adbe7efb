//! A backend for the gateway tests that records every request it receives — method,
//! path with query, headers, body — and answers as the test asks: an echo of what it
//! got, a slow head, several cookies and hop-by-hop headers, or a WebSocket echo that
//! says who keygate said the caller is.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path and query, as received.
    pub target: String,
    /// Every header, names lower-case, in order (repeats kept).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The names of the headers starting with `x-auth-`.
    pub fn identity_names(&self) -> Vec<&str> {
        self.headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("x-auth-"))
            .collect()
    }
}

/// The recording upstream; stopped when dropped.
pub struct TestUpstream {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    closes: Arc<Mutex<Vec<String>>>,
    handle: ServerHandle,
}

async fn record(req: &HttpRequest, mut payload: web::Payload, seen: &Mutex<Vec<Seen>>) -> Seen {
    let mut body = Vec::new();
    // An upgrade request's payload is the connection itself, which never ends here.
    let upgrade = req.head().upgrade();
    while let Some(chunk) = match upgrade {
        true => None,
        false => payload.next().await,
    } {
        match chunk {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    let entry = Seen {
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    };
    seen.lock().unwrap().push(entry.clone());
    entry
}

async fn echo(
    req: HttpRequest,
    payload: web::Payload,
    seen: web::Data<Mutex<Vec<Seen>>>,
) -> HttpResponse {
    let entry = record(&req, payload, &seen).await;
    match req.path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().finish()
        }
        "/cookies" => HttpResponse::Ok()
            .append_header(("set-cookie", "a=1; Path=/"))
            .append_header(("set-cookie", "b=2; Path=/"))
            .append_header(("keep-alive", "timeout=5"))
            .append_header(("x-kept", "yes"))
            .body("cookies"),
        "/stream" => {
            let chunks = futures_util::stream::iter(
                ["one ", "two ", "three"].map(|s| Ok::<_, actix_web::Error>(web::Bytes::from(s))),
            );
            HttpResponse::Ok().streaming(chunks)
        }
        "/status/418" => HttpResponse::build(actix_web::http::StatusCode::IM_A_TEAPOT).finish(),
        _ => HttpResponse::Ok().json(json!({
            "method": entry.method,
            "target": entry.target,
            "user": entry.header("x-auth-user-id"),
            "body": String::from_utf8_lossy(&entry.body),
        })),
    }
}

async fn socket(
    req: HttpRequest,
    payload: web::Payload,
    seen: web::Data<Mutex<Vec<Seen>>>,
    closes: web::Data<Arc<Mutex<Vec<String>>>>,
) -> Result<HttpResponse, actix_web::Error> {
    let user = req
        .headers()
        .get("x-auth-user-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_string();
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        target: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: Vec::new(),
    });
    let (response, mut session, mut messages) = actix_ws::handle(&req, payload)?;
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = messages.recv().await {
            match message {
                actix_ws::Message::Text(text)
                    if session.text(format!("{user}: {text}")).await.is_err() =>
                {
                    return;
                }
                actix_ws::Message::Ping(bytes) => {
                    let _ = session.pong(&bytes).await;
                }
                actix_ws::Message::Close(reason) => {
                    let said = reason.as_ref().map_or("no reason".to_string(), |r| {
                        format!(
                            "{} {}",
                            u16::from(r.code),
                            r.description.as_deref().unwrap_or("")
                        )
                    });
                    closes.lock().unwrap().push(said);
                    let _ = session.close(reason).await;
                    return;
                }
                _ => {}
            }
        }
        closes.lock().unwrap().push("no close frame".into());
    });
    Ok(response)
}

impl TestUpstream {
    /// Starts the upstream on a random port.
    pub async fn start() -> TestUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let data = web::Data::from(seen.clone());
        let closes = Arc::new(Mutex::new(Vec::new()));
        let closes_data = web::Data::new(closes.clone());
        let (addr, handle) = super::serve_mock!(move || {
            App::new()
                .app_data(data.clone())
                .app_data(closes_data.clone())
                .route("/ws", web::get().to(socket))
                .default_service(web::to(echo))
        });
        TestUpstream {
            url: format!("http://{addr}"),
            seen,
            closes,
            handle,
        }
    }

    /// How each WebSocket ended on the upstream's side, in order.
    pub fn closes(&self) -> Vec<String> {
        self.closes.lock().unwrap().clone()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The last request.
    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(false).await });
    }
}

/// A JSON body of an echo answer.
pub fn echoed(body: &Value) -> (&str, &str, Option<&str>) {
    (
        body["method"].as_str().unwrap_or(""),
        body["target"].as_str().unwrap_or(""),
        body["user"].as_str(),
    )
}

/// An upstream that answers one request with `response`, written as it is (for what an
/// HTTP library would not send, such as its own `Connection` header); returns its URL.
pub fn raw_upstream(response: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}
