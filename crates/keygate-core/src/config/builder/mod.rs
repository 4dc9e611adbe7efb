//! [`AuthenticatorBuilder`]: every setting of verification, validated together in
//! [`AuthenticatorBuilder::build`] with the messages the environment gets.
//!
//! Three jobs, one module each: `settings.rs` records what was set and from which
//! variable, `validate.rs` checks the settings against each other and derives what
//! they imply, `assemble.rs` starts the actors and builds the [`Authenticator`].
//!
//! [`Authenticator`]: crate::Authenticator

mod assemble;
mod settings;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
mod validate;

pub use settings::AuthenticatorBuilder;

/// Clerk's Backend API, unless `CLERK_API_URL` says otherwise.
pub const DEFAULT_CLERK_API_URL: &str = "https://api.clerk.com";
