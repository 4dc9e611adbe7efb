//! `keygate mint` (to be implemented).
/// Options of `keygate mint`.
#[derive(Debug, clap::Args)]
pub struct MintArgs {}
/// Prints a signed token.
pub fn mint(_args: &MintArgs) -> Result<String, super::CliError> {
    Err(super::CliError::Usage("mint: not implemented yet".into()))
}
