//! Logging setup: env_logger filtered by `RUST_LOG` (default `info`), as text or as
//! one JSON object a line (`LOG_FORMAT=json`).

use std::io::Write;

use crate::config::LogFormat;

/// Installs the global logger; a second call is a no-op.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    // Tests and embedders may have installed a logger already.
    let _ = builder.try_init();
}
