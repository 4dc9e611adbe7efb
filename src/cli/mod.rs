//! The commands of the `keygate` binary, kept out of `main.rs` so tests can call them.
//!
//! Every failure is a [`CliError`] with its exit code: 2 for configuration and usage
//! errors (one line naming the variable or option), 1 for everything else.

pub mod mint;
pub mod verify;

use crate::app::{self, Keygate, StartError};
use crate::config::{ConfigError, Settings};
use crate::store::{Store, StoreError};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration: exit 2.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Bad command-line usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The service could not start: exit 1.
    #[error("{0}")]
    Start(#[from] StartError),
    /// The database failed: exit 1.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The development issuer could not create its key or sign (`keygate dev`): exit 1.
    #[error("{0}")]
    Issuer(#[from] crate::dev::issuer::IssuerError),
    /// A token was rejected (`keygate verify`): exit 1.
    #[error("{code}: {detail}")]
    Rejected {
        /// The failure code.
        code: &'static str,
        /// Its detail.
        detail: &'static str,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// `keygate serve`: the service configured by the environment.
pub fn serve() -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    crate::logging::init(settings.log_format);
    run_service(settings, None)
}

/// Builds and serves the app until a shutdown signal; used by `serve` and `dev`.
pub fn run_service(settings: Settings, extra: Option<app::ExtraRoutes>) -> Result<(), CliError> {
    let listener = app::bind(&settings)?;
    actix_rt::System::new().block_on(async move {
        let keygate = Keygate::build(settings, crate::clock::system()).await?;
        app::run(keygate, listener, extra).await?;
        Ok(())
    })
}

/// `keygate migrate`: applies the migrations and exits.
pub fn migrate() -> Result<(), CliError> {
    let settings = Settings::from_lookup_without_keys_from_env()?;
    crate::logging::init(settings.log_format);
    actix_rt::System::new().block_on(async move {
        let store = Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        println!(
            "migrations applied to {}",
            redact_url(&settings.database_url)
        );
        Ok(())
    })
}

/// A database URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
