//! The `keygate` binary: a thin command line over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate::cli::{self, CliError, mint::MintArgs};

/// A standalone service that guards HTTP routes with JSON Web Tokens.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, about)]
struct Cli {
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
    Mint(Box<MintArgs>),
    /// Verify a token with the current configuration and print its claims.
    Verify {
        /// The token (compact JWS).
        token: String,
    },
    /// Apply the database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => cli::serve(),
        Command::Dev => keygate::dev::run(),
        Command::Mint(args) => cli::mint::mint(&args).map(|token| println!("{token}")),
        Command::Verify { token } => {
            cli::verify::verify(&token).map(|claims| println!("{claims:#}"))
        }
        Command::Migrate => cli::migrate(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn report(e: &CliError) {
    eprintln!("keygate: {e}");
}
