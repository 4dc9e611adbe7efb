//! Following one request: `X-Request-Id` in and out (and upstream), `request_id` in log
//! lines, W3C trace context, spans at an OTLP collector (with a child span for a JWKS
//! fetch and for the upstream call), a collector that is down or hangs, and `PORT`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::upstream::TestUpstream;
use crate::common::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[actix_rt::test]
async fn every_response_carries_the_request_id_it_was_given_or_a_new_one() {
    let app = spawn_app(&[("JWT_SECRET", SECRET)]).await;
    let token = hs256(&claims("user_ids"));
    let bearer = format!("Bearer {token}");
    let kept = "x".repeat(128);
    for (path, headers, expect_status) in [
        ("/healthz", vec![], 200),
        ("/protected", vec![("Authorization", bearer.as_str())], 200),
        ("/protected", vec![], 401),
        ("/no/such/route", vec![], 404),
    ] {
        let mut given = headers.clone();
        given.push(("X-Request-Id", "req-123_ABC.~!"));
        let reply = app.get_with(path, &given).await;
        assert_eq!(reply.status, expect_status, "{path}");
        assert_eq!(
            reply.header("x-request-id"),
            Some("req-123_ABC.~!"),
            "{path}"
        );

        let reply = app.get_with(path, &headers).await;
        let first = reply.header("x-request-id").unwrap_or("").to_string();
        assert!(is_generated(&first), "{path}: {first:?}");
        let second = app.get_with(path, &headers).await;
        assert_ne!(
            second.header("x-request-id"),
            Some(first.as_str()),
            "{path}"
        );
    }
    let reply = app.get_with("/healthz", &[("X-Request-Id", &kept)]).await;
    assert_eq!(reply.header("x-request-id"), Some(kept.as_str()));
    let too_long = "x".repeat(129);
    for bad in ["has space", "", too_long.as_str()] {
        let reply = app.get_with("/healthz", &[("X-Request-Id", bad)]).await;
        let id = reply.header("x-request-id").unwrap_or("");
        assert!(is_generated(id), "{bad:?} gave {id:?}");
    }
}

#[actix_rt::test]
async fn a_proxied_request_carries_its_id_and_the_callers_trace_context_upstream() {
    let upstream = TestUpstream::start().await;
    let app = spawn_app(&[("JWT_SECRET", SECRET), ("UPSTREAM_URL", &upstream.url)]).await;
    let token = hs256(&claims("user_proxied"));
    let bearer = format!("Bearer {token}");
    let reply = app
        .get_with(
            "/api/items",
            &[
                ("Authorization", &bearer),
                ("X-Request-Id", "from-the-balancer"),
                ("traceparent", &traceparent()),
                ("tracestate", "vendor=1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("from-the-balancer"));
    let reply = app
        .get_with("/api/items", &[("Authorization", &bearer)])
        .await;
    let generated = reply.header("x-request-id").unwrap_or("").to_string();
    assert!(is_generated(&generated), "{generated:?}");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].all("x-request-id"), ["from-the-balancer"]);
    // Without span export keygate has no span of its own to name: the caller's
    // context passes through untouched.
    assert_eq!(seen[0].all("traceparent"), [traceparent().as_str()]);
    assert_eq!(seen[0].all("tracestate"), ["vendor=1"]);
    assert_eq!(seen[1].all("x-request-id"), [generated.as_str()]);
}

/// The lines of `process`'s stderr gathered until one contains `needle`.
async fn log_lines_until(
    process: &crate::common::process::KeygateProcess,
    needle: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    let found = eventually(Duration::from_secs(10), async || {
        lines.extend(process.stderr_lines());
        lines.iter().any(|l| l.contains(needle))
    })
    .await;
    assert!(found, "no log line with {needle:?} in {lines:?}");
    lines
}

#[actix_rt::test]
async fn log_lines_about_a_request_carry_its_request_id() {
    for format in ["json", "text"] {
        let process = spawn_keygate(
            &["serve"],
            &[
                ("JWT_SECRET", SECRET),
                ("LOG_FORMAT", format),
                // Only keygate's debug lines: the request span must get through a
                // filter that names no span at all.
                ("RUST_LOG", "warn,keygate_core=debug"),
            ],
        );
        process.wait_healthy().await;
        let id = format!("log-{format}-1");
        let res = awc::Client::default()
            .get(format!("{}/protected", process.base))
            .insert_header(("Authorization", "Bearer not.a.token"))
            .insert_header(("X-Request-Id", id.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let lines = log_lines_until(&process, "token rejected").await;
        let line = lines.iter().find(|l| l.contains("token rejected")).unwrap();
        if format == "json" {
            let object: Value = serde_json::from_str(line).unwrap();
            assert_eq!(object["request_id"], json!(id), "{line}");
            assert_eq!(object["code"], "malformed_token", "{line}");
        } else {
            assert!(line.contains(&format!("request_id={id}")), "{line}");
        }
        assert!(
            !line.contains("not.a.token"),
            "the token is in a log line: {line}"
        );
    }
}

#[actix_rt::test]
async fn port_alone_listens_on_every_interface() {
    let port = process::free_port();
    let process = spawn_keygate_on(
        port,
        &["serve"],
        &[("JWT_SECRET", SECRET), ("PORT", &port.to_string())],
    );
    process.wait_healthy().await;
    let lines = log_lines_until(&process, "listening").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("http://0.0.0.0:{port}"))),
        "{lines:?}"
    );
}

#[cfg(feature = "otlp")]
mod otlp {
    use super::*;
    use crate::common::otlp::{Behaviour, MockCollector, ReceivedSpan};
    use crate::common::process::KeygateProcess;

    /// Polls the collector until `check` holds for the spans of `trace`.
    async fn spans_of(
        collector: &MockCollector,
        trace: &str,
        check: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let mut spans = Vec::new();
        let found = eventually(Duration::from_secs(15), async || {
            spans = collector.trace(trace);
            check(&spans)
        })
        .await;
        assert!(found, "spans of {trace}: {spans:#?}");
        spans
    }

    fn named<'s>(spans: &'s [ReceivedSpan], name: &str) -> Option<&'s ReceivedSpan> {
        spans.iter().find(|s| s.name == name)
    }

    /// Waits until `path` answers 200 (the process may not listen yet).
    async fn wait_for(process: &KeygateProcess, path: &str) {
        let mut last = String::new();
        let answered = eventually(Duration::from_secs(30), async || {
            let res = awc::Client::default()
                .get(format!("{}{path}", process.base))
                .send()
                .await;
            last = match res {
                Ok(r) if r.status() == 200 => return true,
                Ok(mut r) => format!("{}: {:?}", r.status(), r.body().await),
                Err(e) => e.to_string(),
            };
            false
        })
        .await;
        assert!(
            answered,
            "{path} never answered 200: {last}; {:?}",
            process.stderr_lines()
        );
    }

    async fn get(
        process: &KeygateProcess,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>) {
        let mut req = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish()
            .get(format!("{}{path}", process.base));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = req.send().await.unwrap();
        let id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        (res.status().as_u16(), id)
    }

    #[actix_rt::test]
    async fn spans_continue_the_callers_trace_with_a_child_for_the_jwks_fetch() {
        let collector = MockCollector::start(Behaviour::Record).await;
        let first = Signer::rs256(0, "key-1");
        let second = Signer::rs256(1, "key-2");
        let jwks = MockJwks::start(vec![first.jwk()]).await;
        let process = spawn_keygate(
            &["serve"],
            &[
                ("JWKS_URL", &jwks.url),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base),
                ("OTEL_SERVICE_NAME", "keygate-test"),
                // Export does not depend on the log filter.
                ("RUST_LOG", "error"),
            ],
        );
        wait_for(&process, "/readyz").await;
        // The key rotates: the next token's kid is unknown until a refetch.
        jwks.publish(vec![first.jwk(), second.jwk()]);
        let token = second.sign(&claims("user_traced"));
        let (status, id) = get(
            &process,
            "/protected",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("traceparent", &traceparent()),
                ("X-Request-Id", "traced-1"),
            ],
        )
        .await;
        assert_eq!((status, id.as_deref()), (200, Some("traced-1")));

        let spans = spans_of(&collector, TRACE_ID, |spans| {
            named(spans, "GET /protected").is_some() && named(spans, "jwks_fetch").is_some()
        })
        .await;
        let request = named(&spans, "GET /protected").unwrap();
        assert_eq!(request.parent_span_id, PARENT_ID, "{request:?}");
        assert_eq!(request.service, "keygate-test");
        assert_eq!(request.attribute("request_id"), Some("traced-1"));
        assert_eq!(request.attribute("http.route"), Some("/protected"));
        assert_eq!(request.attribute("http.status_code"), Some("200"));
        let fetch = named(&spans, "jwks_fetch").unwrap();
        assert_eq!(fetch.parent_span_id, request.span_id, "{fetch:?}");
        for span in &spans {
            assert!(
                span.attributes.iter().all(|(_, v)| !v.contains(&token)),
                "the token is in a span: {span:?}"
            );
        }
        // The protobuf encoding is the default.
        assert!(
            collector
                .content_types()
                .iter()
                .all(|t| t == "application/x-protobuf"),
            "{:?}",
            collector.content_types()
        );
    }

    #[actix_rt::test]
    async fn the_upstream_is_a_child_of_keygates_upstream_span() {
        let collector = MockCollector::start(Behaviour::Record).await;
        let upstream = TestUpstream::start().await;
        let process = spawn_keygate(
            &["serve"],
            &[
                ("JWT_SECRET", SECRET),
                ("UPSTREAM_URL", &upstream.url),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
        );
        wait_for(&process, "/_keygate/healthz").await;
        let token = hs256(&claims("user_upstream"));
        let (status, id) = get(
            &process,
            "/api/orders",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("traceparent", &traceparent()),
            ],
        )
        .await;
        assert_eq!(status, 200);
        let spans = spans_of(&collector, TRACE_ID, |spans| {
            named(spans, "upstream").is_some() && named(spans, "GET upstream").is_some()
        })
        .await;
        let request = named(&spans, "GET upstream").unwrap();
        let call = named(&spans, "upstream").unwrap();
        assert_eq!(request.parent_span_id, PARENT_ID);
        assert_eq!(call.parent_span_id, request.span_id);
        let seen = upstream.seen();
        assert_eq!(seen.len(), 1);
        // Same trace, and the upstream's parent is keygate's call span.
        assert_eq!(
            seen[0].all("traceparent"),
            [format!("00-{TRACE_ID}-{}-01", call.span_id).as_str()]
        );
        assert_eq!(seen[0].all("x-request-id"), [id.unwrap().as_str()]);
        assert!(
            collector
                .content_types()
                .iter()
                .all(|t| t.starts_with("application/json")),
            "{:?}",
            collector.content_types()
        );
    }

    #[actix_rt::test]
    async fn a_collector_that_is_down_or_hangs_changes_no_response() {
        let hanging = MockCollector::start(Behaviour::Hang).await;
        let down = format!("http://127.0.0.1:{}", process::free_port());
        for (endpoint, what) in [(down.as_str(), "down"), (hanging.base.as_str(), "hanging")] {
            let process = spawn_keygate(
                &["serve"],
                &[
                    ("JWT_SECRET", SECRET),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                    ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
                ],
            );
            process.wait_healthy().await;
            let token = hs256(&claims("user_unexported"));
            let bearer = format!("Bearer {token}");
            // Each request must answer within the client's 5 s, as without export;
            // more spans end than the queue holds, so the hanging collector's are dropped.
            for n in 0..40 {
                let (status, _) = get(&process, "/protected", &[("Authorization", &bearer)]).await;
                assert_eq!(status, 200, "{what}: request {n}");
            }
            if what == "hanging" {
                let mut dropped = 0.0;
                let counted = eventually(Duration::from_secs(10), async || {
                    let text = awc::Client::default()
                        .get(format!("{}/metrics", process.base))
                        .send()
                        .await
                        .unwrap()
                        .body()
                        .await
                        .unwrap();
                    dropped = metric_value(
                        &String::from_utf8_lossy(&text),
                        "keygate_otel_spans_dropped_total",
                    );
                    dropped != 0.0
                })
                .await;
                assert!(counted, "no dropped span counted");
                assert!(dropped >= 1.0, "{what}: {dropped}");
            }
        }
    }
}
