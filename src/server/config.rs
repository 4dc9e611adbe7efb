//! The service's configuration, read once from the environment (and `.env`), validated
//! before anything starts: an [`AuthenticatorBuilder`] for verification (the library's
//! own reader) and a [`ServerConfig`] for everything only the service has.
//!
//! Every server variable has its default here and nowhere else. A bad value becomes a
//! [`ConfigError`] naming the variable; this module never panics and never puts a
//! secret into an error message.

use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::env::Env;
use crate::{AuthenticatorBuilder, ConfigError};

use super::cors::CorsConfig;
use super::gateway::GatewayConfig;
use super::telemetry::TelemetryConfig;
use super::webhooks::svix;

/// Log line format chosen by `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Everything the service needs besides verification.
#[derive(Clone)]
pub struct ServerConfig {
    /// `BIND_ADDR`, else `0.0.0.0:$PORT` when `PORT` is set, else `127.0.0.1:8080`.
    pub bind_addr: SocketAddr,
    /// `WORKERS`.
    pub workers: usize,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REVOCATION_POLL_SECS`: how often revocations are polled from the database
    /// (the safety net behind PostgreSQL's notifications).
    pub revocation_poll: Duration,
    /// `CLERK_WEBHOOK_SECRET` (alias `CLERK_WEBHOOK_SIGNING_SECRET`), decoded: enables
    /// `POST /webhooks/clerk`.
    pub webhook_secret: Option<Vec<u8>>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RUST_LOG`, when set.
    pub log_filter: Option<String>,
    /// `APP_ENV=production`.
    pub production: bool,
    /// Whether SIGTERM/SIGINT start a graceful shutdown (the binary: yes; tests: no).
    pub handle_signals: bool,
    /// `READYZ_DATABASE`: whether an unreachable database makes `/readyz` 503.
    pub readyz_database: bool,
    /// `SHUTDOWN_DRAIN_SECS`: how long `/readyz` is 503 before the server stops accepting.
    pub shutdown_drain: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and friends: span export, when configured.
    pub telemetry: Option<TelemetryConfig>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind_addr", &self.bind_addr)
            .field("workers", &self.workers)
            .field(
                "database_url",
                &super::store::redact_url(&self.database_url),
            )
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("revocation_poll", &self.revocation_poll)
            .field("log_format", &self.log_format)
            .field("readyz_database", &self.readyz_database)
            .field("shutdown_drain", &self.shutdown_drain)
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

/// The whole configuration of one keygate process.
#[derive(Clone)]
pub struct Config {
    /// Verification: keys, policy, cache (the library's builder).
    pub auth: AuthenticatorBuilder,
    /// The rest.
    pub server: ServerConfig,
    /// Forward auth, the reverse proxy and their rules.
    pub gateway: GatewayConfig,
    /// `CORS_ALLOWED_ORIGINS` and `CORS_ALLOWED_HEADERS` (`None`: no cross-origin caller).
    pub cors: Option<CorsConfig>,
    /// The clock of everything that depends on time (the system's; tests move a manual one).
    pub clock: SharedClock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("auth", &self.auth)
            .field("server", &self.server)
            .field("gateway", &self.gateway)
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

/// `REVOCATION_POLL_SECS` unless set.
pub const DEFAULT_REVOCATION_POLL_SECS: u64 = 5;

/// The embedded SQLite file, unless `DATABASE_URL` says otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db?mode=rwc";

/// Every variable the service reads beyond the library's, for documentation checks.
pub const SERVER_VARIABLES: &[&str] = &[
    "BIND_ADDR",
    "PORT",
    "WORKERS",
    "DATABASE_URL",
    "REVOCATION_POLL_SECS",
    "CLERK_WEBHOOK_SECRET",
    "CLERK_WEBHOOK_SIGNING_SECRET",
    "RUST_LOG",
    "LOG_FORMAT",
    "APP_ENV",
    "READYZ_DATABASE",
    "SHUTDOWN_DRAIN_SECS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "CORS_ALLOWED_ORIGINS",
    "CORS_ALLOWED_HEADERS",
];

impl Config {
    /// The configuration of the process environment, after loading `.env` when present
    /// (real environment variables win, as dotenvy never overrides them).
    pub fn from_env() -> Result<Config, ConfigError> {
        load_dotenv()?;
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// The configuration described by any lookup function (a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(lookup);
        let server = ServerConfig::read(&env)?;
        let gateway = GatewayConfig::read(&env)?;
        let auth = AuthenticatorBuilder::from_lookup(|var| env.raw(var))?;
        let cors = CorsConfig::read(
            &env,
            (
                auth.authorized_parties_variable(),
                auth.configured_authorized_parties(),
            ),
        )?;
        Ok(Config {
            auth,
            server,
            gateway,
            cors,
            clock: crate::clock::system(),
        })
    }
}

impl ServerConfig {
    /// The server variables of `env`.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ServerConfig, ConfigError> {
        let bind_addr = bind_addr(env)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let workers = env.number("WORKERS", cores, 1)?;
        let revocation_poll =
            env.seconds("REVOCATION_POLL_SECS", DEFAULT_REVOCATION_POLL_SECS, 1)?;

        let webhook_secret =
            match env.get_alias("CLERK_WEBHOOK_SECRET", "CLERK_WEBHOOK_SIGNING_SECRET", true) {
                Some((var, raw)) => {
                    Some(svix::decode_signing_secret(&raw).map_err(|p| ConfigError::new(var, p))?)
                }
                None => None,
            };

        let log_format = ServerConfig::log_format(env)?;

        Ok(ServerConfig {
            bind_addr,
            workers,
            database_url: database_url(env)?,
            revocation_poll,
            webhook_secret,
            log_format,
            log_filter: env.get("RUST_LOG"),
            production: env
                .get("APP_ENV")
                .is_some_and(|v| v.eq_ignore_ascii_case("production")),
            handle_signals: true,
            readyz_database: env.flag("READYZ_DATABASE", true)?,
            shutdown_drain: env.seconds("SHUTDOWN_DRAIN_SECS", 2, 0)?,
            telemetry: TelemetryConfig::read(env)?,
        })
    }
}

/// `BIND_ADDR`; else all interfaces on `PORT` (what container platforms set); else the
/// loopback default.
fn bind_addr<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<SocketAddr, ConfigError> {
    if let Some(raw) = env.get("BIND_ADDR") {
        return raw.parse::<SocketAddr>().map_err(|e| {
            ConfigError::caused_by(
                "BIND_ADDR",
                format!("expected host:port with an IP address, got {raw:?}"),
                e,
            )
        });
    }
    match env.get("PORT") {
        Some(raw) => raw
            .parse::<u16>()
            .map(|port| SocketAddr::from(([0, 0, 0, 0], port)))
            .map_err(|e| {
                ConfigError::caused_by(
                    "PORT",
                    format!("expected a port number (0-65535), got {raw:?}"),
                    e,
                )
            }),
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 8080))),
    }
}

impl ServerConfig {
    /// `LOG_FORMAT`.
    pub fn log_format<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<LogFormat, ConfigError> {
        match env
            .get("LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(ConfigError::new(
                "LOG_FORMAT",
                format!("expected text or json, got {other:?}"),
            )),
        }
    }
}

impl Config {
    /// How long one JWKS fetch may take.
    pub fn fetch_timeout(&self) -> std::time::Duration {
        self.auth.configured_fetch_timeout()
    }
}

/// `DATABASE_URL`, checked for a scheme keygate can open.
pub fn database_url<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    let url = env
        .get_exact("DATABASE_URL")
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(url)
    } else {
        Err(ConfigError::new(
            "DATABASE_URL",
            "expected a sqlite: or postgres:// URL",
        ))
    }
}

/// Loads `.env` when present; real environment variables win. A missing file is the
/// normal case, a malformed one is reported.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(ConfigError::caused_by(".env", e.to_string(), e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "a-very-long-shared-secret-of-32+bytes!";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> ConfigError {
        match config(vars) {
            Ok(_) => panic!("expected a configuration error for {vars:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn env_example_and_readme_document_every_variable() {
        let example = include_str!("../../.env.example");
        let readme = include_str!("../../README.md");
        let reference = include_str!("../../docs/reference.md");
        for var in crate::config::env::VARIABLES
            .iter()
            .chain(SERVER_VARIABLES)
            .chain(crate::server::gateway::config::VARIABLES)
        {
            assert!(
                example.contains(&format!("{var}=")),
                ".env.example lacks {var}"
            );
            assert!(readme.contains(var), "README lacks {var}");
            assert!(
                reference.contains(&format!("`{var}`")),
                "docs/reference.md lacks {var}"
            );
        }
    }

    #[test]
    fn server_defaults() {
        let c = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(c.server.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.server.log_format, LogFormat::Text);
        assert!(c.server.workers >= 1);
        assert!(c.server.webhook_secret.is_none());
        assert!(c.server.readyz_database);
        assert_eq!(c.server.revocation_poll, Duration::from_secs(5));
        assert_eq!(c.server.shutdown_drain, Duration::from_secs(2));
        assert!(c.server.telemetry.is_none());
    }

    #[test]
    fn port_binds_every_interface_unless_bind_addr_is_set() {
        let base = ("JWT_SECRET", SECRET);
        let c = config(&[base, ("PORT", "9000")]).unwrap();
        assert_eq!(c.server.bind_addr.to_string(), "0.0.0.0:9000");
        let c = config(&[base, ("PORT", "9000"), ("BIND_ADDR", "127.0.0.1:7000")]).unwrap();
        assert_eq!(c.server.bind_addr.to_string(), "127.0.0.1:7000");
        assert_eq!(err(&[base, ("PORT", "http")]).var, "PORT");
        assert_eq!(err(&[base, ("PORT", "70000")]).var, "PORT");
    }

    #[test]
    fn operations_variables_are_read_and_checked() {
        let base = ("JWT_SECRET", SECRET);
        let c = config(&[
            base,
            ("READYZ_DATABASE", "false"),
            ("SHUTDOWN_DRAIN_SECS", "0"),
        ])
        .unwrap();
        assert!(!c.server.readyz_database);
        assert_eq!(c.server.shutdown_drain, Duration::ZERO);
        assert_eq!(
            err(&[base, ("READYZ_DATABASE", "maybe")]).var,
            "READYZ_DATABASE"
        );
        assert_eq!(
            err(&[base, ("SHUTDOWN_DRAIN_SECS", "-1")]).var,
            "SHUTDOWN_DRAIN_SECS"
        );
    }

    #[test]
    fn server_values_are_checked() {
        let base = ("JWT_SECRET", SECRET);
        assert_eq!(err(&[base, ("WORKERS", "0")]).var, "WORKERS");
        assert_eq!(err(&[base, ("WORKERS", "abc")]).var, "WORKERS");
        assert_eq!(
            err(&[base, ("REVOCATION_POLL_SECS", "0")]).var,
            "REVOCATION_POLL_SECS"
        );
        assert_eq!(
            config(&[base, ("REVOCATION_POLL_SECS", "1")])
                .unwrap()
                .server
                .revocation_poll,
            Duration::from_secs(1)
        );
        assert_eq!(err(&[base, ("BIND_ADDR", "localhost")]).var, "BIND_ADDR");
        assert_eq!(err(&[base, ("LOG_FORMAT", "xml")]).var, "LOG_FORMAT");
        assert_eq!(
            config(&[base, ("LOG_FORMAT", "json")])
                .unwrap()
                .server
                .log_format,
            LogFormat::Json
        );
        assert_eq!(
            err(&[base, ("DATABASE_URL", "mysql://x")]).var,
            "DATABASE_URL"
        );
        assert_eq!(
            err(&[base, ("CLERK_WEBHOOK_SECRET", "nope")]).var,
            "CLERK_WEBHOOK_SECRET"
        );
    }
}
