//! Logging: `tracing` events filtered by `RUST_LOG` (default `info`), as text or as one
//! JSON object a line (`LOG_FORMAT=json`: `ts`, `level`, `target`, `message`, the
//! event's own fields and the `request_id` of the request it is about).
//!
//! Records of crates that log through `log` (sqlx, actix) come through the same
//! subscriber. Nothing here ever formats a token or a secret: callers do not pass them.
//!
//! The request span passes the log filter whatever `RUST_LOG` says, so a `warn` line
//! about a request carries its `request_id` even when `info` is filtered out. With
//! span export configured, the OpenTelemetry layer sits beside the log layer with a
//! filter of its own.

use std::cell::RefCell;
use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::metadata::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::config::LogFormat;
use super::telemetry::{Guard, TelemetryConfig, span};
use crate::ConfigError;

/// The filter of `RUST_LOG`, checked: a value that does not parse is a configuration
/// error rather than a silent loss of every line.
pub fn filter(directives: Option<&str>) -> Result<EnvFilter, ConfigError> {
    let directives = directives.unwrap_or("info");
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| ConfigError::caused_by("RUST_LOG", format!("does not parse: {e}"), e))
}

/// Installs the global subscriber: the log lines, and span export when `telemetry`
/// says where to. A second call (tests, an embedder's own subscriber) changes nothing.
/// Keep the returned guard until the service stops, then shut it down.
pub fn init(
    format: LogFormat,
    directives: Option<&str>,
    telemetry: Option<&TelemetryConfig>,
) -> Result<Guard, ConfigError> {
    let env = filter(directives)?;
    let (export, guard) = Guard::start(telemetry)?;
    let installed = match export {
        Some(export) => {
            // Two layers with filters of their own.
            let requests = filter_fn(is_request_span);
            let logs = logs(format).with_filter(env.or(requests)).boxed();
            tracing_subscriber::registry()
                .with(vec![logs, export])
                .try_init()
        }
        // One layer: its filter is the subscriber's, which spares every span entry,
        // exit and close the per-layer filter's bookkeeping (a lookup of the span).
        None => tracing_subscriber::registry()
            .with(LogFilter {
                // Only a directive naming a span (`[span{field=value}]`) is dynamic.
                dynamic: directives.unwrap_or_default().contains('['),
                env,
            })
            .with(logs(format))
            .try_init(),
    };
    if installed.is_err() {
        // Someone else's subscriber is in place: nothing of ours would see a span.
        guard.shutdown();
        return Ok(Guard::default());
    }
    Ok(guard)
}

fn is_request_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == span::NAME
}

/// The log lines' layer, unfiltered.
fn logs<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .fmt_fields(TextFields)
            .boxed(),
        LogFormat::Json => SpanFields
            .and_then(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .fmt_fields(NoFields)
                    .event_format(JsonLines),
            )
            .boxed(),
    }
}

/// `RUST_LOG` as the whole subscriber's filter, letting the request span through.
struct LogFilter {
    env: EnvFilter,
    /// Whether `env` has span directives, which follow spans as they are entered; the
    /// span hooks are only passed on then (without, `EnvFilter` takes a lock in each to
    /// find nothing).
    dynamic: bool,
}

impl<S: Subscriber> Layer<S> for LogFilter {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Asked even for the request span: this is where `EnvFilter` learns the span
        // callsites its span directives name.
        let interest = Layer::<S>::register_callsite(&self.env, meta);
        if is_request_span(meta) {
            Interest::always()
        } else {
            interest
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        is_request_span(meta) || Layer::<S>::enabled(&self.env, meta, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // The request span is at `info`.
        Layer::<S>::max_level_hint(&self.env).map(|level| level.max(LevelFilter::INFO))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.dynamic {
            Layer::<S>::on_new_span(&self.env, attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.dynamic {
            Layer::<S>::on_record(&self.env, id, values, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.dynamic {
            Layer::<S>::on_enter(&self.env, id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.dynamic {
            Layer::<S>::on_exit(&self.env, id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.dynamic {
            Layer::<S>::on_close(&self.env, id, ctx);
        }
    }
}

/// The fields of text lines: `name=value` separated by spaces, the message bare, the
/// `log.*` fields of `log` records left out (the target says where a line came from).
///
/// The request span's fields are formatted on every request even when no line is
/// written, so this stays plain: the default formatter runs each field name through
/// terminal styling, which costs a request more than its routing does.
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        thread_local! {
            static FIELDS: RefCell<String> = const { RefCell::new(String::new()) };
        }
        // Gathered first and written at once: the request span's fields go into a new
        // string, which would otherwise grow (and move) two or three times per request.
        FIELDS.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let result = record_text(Writer::new(&mut *buffer), fields);
                let written = writer.write_str(&buffer);
                if buffer.capacity() > 4096 {
                    *buffer = String::new();
                }
                result.and(written)
            }
            // A value whose formatting logs something.
            Err(_) => record_text(writer, fields),
        })
    }
}

fn record_text<R: RecordFields>(writer: Writer<'_>, fields: R) -> fmt::Result {
    let mut visitor = TextVisitor {
        writer,
        first: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.result
}

struct TextVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl TextVisitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        // Piece by piece: one formatting pass for the value alone.
        let first = std::mem::replace(&mut self.first, false);
        let writer = &mut self.writer;
        self.result = (|| {
            if !first {
                writer.write_char(' ')?;
            }
            if name != "message" {
                writer.write_str(name)?;
                writer.write_char('=')?;
            }
            writer.write_fmt(value)
        })();
    }
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// No span fields at all: JSON lines read theirs from [`Recorded`].
struct NoFields;

impl<'w> FormatFields<'w> for NoFields {
    fn format_fields<R: RecordFields>(&self, _writer: Writer<'w>, _fields: R) -> fmt::Result {
        Ok(())
    }
}

/// Span fields kept as JSON in the span's extensions, for [`JsonLines`].
struct SpanFields;

struct Recorded(Map<String, Value>);

impl<S> Layer<S> for SpanFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Recorded(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(recorded) = span.extensions_mut().get_mut::<Recorded>()
        {
            values.record(&mut JsonVisitor(&mut recorded.0));
        }
    }
}

/// One JSON object a line.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            Value::String(
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
        );
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_string()),
        );
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        // `log` records carry their origin in fields of their own; the target says it.
        fields.retain(|name, _| !name.starts_with("log."));
        let message = fields
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        line.insert("message".into(), message);
        line.extend(fields);
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                if let Some(Recorded(recorded)) = extensions.get::<Recorded>()
                    && let Some(id) = recorded.get("request_id")
                {
                    line.entry("request_id").or_insert_with(|| id.clone());
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_lines_carry_plain_fields_and_the_request_span() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(TextFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let id = Some("req-1");
            let span = tracing::info_span!(
                "request",
                request_id = id.map(tracing::field::display),
                http.method = %"GET",
                http.route = tracing::field::Empty,
            );
            let _entered = span.enter();
            tracing::warn!(
                code = "malformed_token",
                attempt = 2,
                "token rejected: {}",
                "why"
            );
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.trim(),
            r#"WARN request{request_id=req-1 http.method=GET}: token rejected: why code="malformed_token" attempt=2"#,
        );
    }

    /// The lines of `directives` for events inside and outside a request span, with
    /// the filter the service installs when nothing is exported.
    fn filtered_lines(directives: &str) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(LogFilter {
                env: filter(Some(directives)).unwrap(),
                dynamic: directives.contains('['),
            })
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .without_time()
                    .with_target(false)
                    .fmt_fields(TextFields),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("outside, debug");
            tracing::warn!("outside, warn");
            let id = Some("req-2");
            let span = tracing::info_span!(
                "request",
                request_id = id.map(tracing::field::display),
                http.method = %"GET",
            );
            let _entered = span.enter();
            tracing::debug!("inside, debug");
            tracing::warn!("inside, warn");
        });
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_request_span_passes_any_filter_and_span_directives_still_apply() {
        let text = filtered_lines("warn");
        assert!(text.contains("WARN outside, warn"), "{text}");
        assert!(
            text.contains("WARN request{request_id=req-2 http.method=GET}: inside, warn"),
            "{text}"
        );
        assert!(!text.contains("debug"), "{text}");
        // A directive naming the span turns its debug lines on, and only its.
        let text = filtered_lines("warn,[request]=debug");
        assert!(
            text.contains("DEBUG request{request_id=req-2 http.method=GET}: inside, debug"),
            "{text}"
        );
        assert!(!text.contains("outside, debug"), "{text}");
    }

    #[test]
    fn a_filter_that_does_not_parse_names_rust_log() {
        assert!(filter(None).is_ok());
        assert!(filter(Some("keygate=debug,actix_web=warn")).is_ok());
        let e = filter(Some("!!!")).err().map(|e| e.var);
        assert_eq!(e.as_deref(), Some("RUST_LOG"));
    }
}
