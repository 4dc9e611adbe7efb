//! The development issuer (to be implemented).
/// Runs `keygate dev`.
pub fn run() -> Result<(), crate::cli::CliError> {
    Err(crate::cli::CliError::Usage(
        "dev: not implemented yet".into(),
    ))
}
