//! The commands of the `keygate` binary, kept out of `main.rs` so tests can call them.
//!
//! Every failure is a [`CliError`] with its exit code: 2 for configuration and usage
//! errors (one line naming the variable or option), 1 for everything else.

pub mod dev;
pub mod migrate;
pub mod mint;
pub mod verify;

use clap::{Parser, Subcommand};

use super::app::{Application, StartError};
use super::config::Config;
use super::dev::IssuerError;
use super::logging;
use super::store::StoreError;
use crate::ConfigError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration: exit 2.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Bad command-line usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The service could not start: exit 1 (2 when the configuration cannot work).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The database failed: exit 1.
    #[error(transparent)]
    Database(#[from] StoreError),
    /// The development issuer could not create its key or sign (`keygate dev`): exit 1.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// A token was rejected (`keygate verify`): exit 1.
    #[error("{code} ({detail}): {reason}")]
    Rejected {
        /// The failure code.
        code: &'static str,
        /// The detail an HTTP client would get.
        detail: &'static str,
        /// What was expected and what the token has.
        reason: String,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) | CliError::Start(StartError::Config(_)) => 2,
            _ => 1,
        }
    }
}

/// A standalone service that guards HTTP routes with JSON Web Tokens.
///
/// Configuration comes from the environment (and `.env`); every variable, route, status
/// code and metric is described in docs/reference.md.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, about, long_about = None)]
#[command(
    after_help = "Reference: docs/reference.md in the keygate repository (configuration, routes, codes, metrics)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service configured by the environment (the default).
    Serve,
    /// Run the service with a built-in development issuer.
    Dev,
    /// Print a signed token.
    Mint(Box<mint::MintArgs>),
    /// Verify a token with the current configuration and print its claims.
    Verify {
        /// The token (compact JWS), with or without a leading `Bearer `.
        token: String,
    },
    /// Apply the database migrations and exit.
    Migrate,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> u8 {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Dev => dev::run(),
        Command::Mint(args) => mint::mint(&args).map(|token| println!("{token}")),
        Command::Verify { token } => verify::verify(&token).map(|claims| println!("{claims:#}")),
        Command::Migrate => migrate::migrate(),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keygate: {e}");
            e.exit_code()
        }
    }
}

/// `keygate serve`: the service configured by the environment.
pub fn serve() -> Result<(), CliError> {
    let config = Config::from_env()?;
    let telemetry = logging::init(
        config.server.log_format,
        config.server.log_filter.as_deref(),
        config.server.telemetry.as_ref(),
    )?;
    let served = actix_rt::System::new().block_on(async move {
        Application::build(config)
            .await?
            .run_until_stopped()
            .await?;
        Ok(())
    });
    telemetry.shutdown();
    served
}
