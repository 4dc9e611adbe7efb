//! A span processor with a bounded queue and an export thread of its own.
//!
//! The SDK's batch processor also bounds its queue, but it only logs what it drops;
//! keygate must count drops in a metric, so the queue is its own: `on_end` (on a
//! request's thread) is one `try_send`, never a wait, and a full queue drops the span
//! and counts it. The thread sends a batch when it has `MAX_BATCH` spans or `DELAY`
//! passed, so a collector that is down or slow holds up only this thread.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Spans per export request.
const MAX_BATCH: usize = 512;
/// The longest a finished span waits before it is sent.
const DELAY: Duration = Duration::from_secs(1);
/// While exports keep failing, warn on the first failure and then every this many.
const WARN_EVERY_FAILURES: u64 = 60;

enum Message {
    Span(Box<SpanData>),
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// The processor (see the module).
#[derive(Debug)]
pub struct BoundedBatch {
    sender: SyncSender<Message>,
    /// Serialises flushes and shutdowns so their acknowledgements do not cross.
    control: Mutex<()>,
}

impl BoundedBatch {
    /// Starts the export thread, which builds its exporter with `make` first (the
    /// exporter's blocking HTTP client must not be created on an async runtime's
    /// thread). Fails with `make`'s error.
    pub fn start<E, M>(make: M, max_queue: usize) -> Result<BoundedBatch, String>
    where
        E: SpanExporter + 'static,
        M: FnOnce() -> Result<E, String> + Send + 'static,
    {
        let (sender, receiver) = mpsc::sync_channel(max_queue);
        let (built, ready) = mpsc::channel();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || match make() {
                Ok(exporter) => {
                    let _ = built.send(Ok(()));
                    run(exporter, receiver);
                }
                Err(e) => {
                    let _ = built.send(Err(e));
                }
            })
            .map_err(|e| format!("cannot start the export thread: {e}"))?;
        ready
            .recv()
            .map_err(|_| "the export thread ended before its exporter was built".to_string())??;
        Ok(BoundedBatch {
            sender,
            control: Mutex::new(()),
        })
    }

    /// Sends a flush or shutdown to the thread and waits up to `timeout` for it. A full
    /// queue refuses it rather than wait: the caller is shutting down, or flushing.
    fn control(
        &self,
        message: impl FnOnce(mpsc::Sender<()>) -> Message,
        timeout: Duration,
    ) -> OTelSdkResult {
        let _serial = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let (ack, done) = mpsc::channel();
        match self.sender.try_send(message(ack)) {
            Ok(()) => done
                .recv_timeout(timeout)
                .map_err(|_| OTelSdkError::Timeout(timeout)),
            Err(TrySendError::Full(_)) => Err(OTelSdkError::InternalFailure(
                "the export queue is full".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

impl SpanProcessor for BoundedBatch {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.sender.try_send(Message::Span(Box::new(span))).is_err() {
            super::span_dropped();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Message::Flush, Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.control(Message::Shutdown, timeout)
    }
}

fn run<E: SpanExporter>(exporter: E, receiver: Receiver<Message>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut failures = 0u64;
    let mut due = Instant::now() + DELAY;
    loop {
        let message = receiver.recv_timeout(due.saturating_duration_since(Instant::now()));
        match message {
            Ok(Message::Span(span)) => {
                batch.push(*span);
                if batch.len() < MAX_BATCH {
                    continue;
                }
            }
            Ok(Message::Flush(ack)) => {
                export(&exporter, &mut batch, &mut failures);
                let _ = ack.send(());
                continue;
            }
            Ok(Message::Shutdown(ack)) => {
                export(&exporter, &mut batch, &mut failures);
                let _ = exporter.shutdown();
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                export(&exporter, &mut batch, &mut failures);
                return;
            }
        }
        export(&exporter, &mut batch, &mut failures);
        due = Instant::now() + DELAY;
    }
}

fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, failures: &mut u64) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    let count = spans.len();
    match futures_executor::block_on(exporter.export(spans)) {
        Ok(()) => {
            if *failures > 0 {
                tracing::info!("OTLP export recovered after {failures} failed batch(es)");
            }
            *failures = 0;
        }
        Err(e) => {
            *failures += 1;
            if *failures == 1 || failures.is_multiple_of(WARN_EVERY_FAILURES) {
                tracing::warn!(
                    "OTLP export of {count} span(s) failed ({failures} in a row; they are lost): {e}"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use opentelemetry::trace::{SpanContext, SpanKind, Status};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    /// An exporter that counts spans and can be made to hang, like a collector that
    /// accepts the connection and never answers.
    #[derive(Debug, Clone)]
    struct Fake {
        exported: Arc<AtomicUsize>,
        entered: Arc<AtomicBool>,
        gate: Arc<Mutex<()>>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                exported: Arc::default(),
                entered: Arc::default(),
                gate: Arc::default(),
            }
        }
    }

    impl SpanExporter for Fake {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.entered.store(true, Ordering::SeqCst);
            let _wait = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn span() -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "request".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn dropped() -> u64 {
        super::super::SPANS_DROPPED.as_ref().map_or(0, |c| c.get())
    }

    #[test]
    fn a_hanging_exporter_never_blocks_on_end_and_drops_are_counted() {
        let fake = Fake::new();
        let hang = fake.gate.lock().unwrap();
        let made = fake.clone();
        let processor = BoundedBatch::start(move || Ok(made), 4).unwrap();
        processor.on_end(span());
        // Within DELAY the thread sends that span and hangs in the exporter.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fake.entered.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the export never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = dropped();
        for _ in 0..100 {
            processor.on_end(span());
        }
        // The queue holds 4; every other span was dropped, and on_end returned each time.
        assert_eq!(dropped() - before, 96);
        assert!(
            processor.force_flush().is_err(),
            "a full queue refuses a flush"
        );
        drop(hang);
        let deadline = Instant::now() + Duration::from_secs(10);
        while processor.force_flush().is_err() {
            assert!(Instant::now() < deadline, "the thread never recovered");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fake.exported.load(Ordering::SeqCst), 1 + 4);
        processor
            .shutdown_with_timeout(Duration::from_secs(5))
            .unwrap();
        assert!(
            processor.force_flush().is_err(),
            "the thread is gone after shutdown"
        );
    }

    #[test]
    fn spans_are_exported_on_flush() {
        let fake = Fake::new();
        let made = fake.clone();
        let processor = BoundedBatch::start(move || Ok(made), 64).unwrap();
        for _ in 0..10 {
            processor.on_end(span());
        }
        processor.force_flush().unwrap();
        assert_eq!(fake.exported.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn an_exporter_that_cannot_be_built_is_an_error() {
        let failed = BoundedBatch::start(|| Err::<Fake, _>("no client".to_string()), 4);
        assert_eq!(failed.err().as_deref(), Some("no client"));
    }
}
