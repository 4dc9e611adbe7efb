//! Configuration of verification: the [`AuthenticatorBuilder`], the environment
//! variables that fill it, and the readers of their values. Every check happens
//! before anything starts; a problem is one [`ConfigError`] naming the variable.

pub mod builder;
pub mod env;
pub mod error;
mod values;

pub use builder::AuthenticatorBuilder;
pub use error::ConfigError;

/// Decodes and checks a shared secret as `JWT_SECRET` is read: its UTF-8 bytes as they
/// are, or `base64:<…>` in either alphabet, padding optional; at least 32 bytes and not
/// the placeholder of `.env.example`. A tool that signs tokens for this verifier (the
/// service's `keygate mint`) reads its secret with it, so both agree on the key. The
/// error names `var` and never repeats the value.
pub fn decode_secret(var: &str, raw: &str) -> Result<Vec<u8>, ConfigError> {
    values::decode_secret(raw)
        .and_then(|bytes| values::check_secret(&bytes).map(|()| bytes))
        .map_err(|problem| ConfigError::new(var, problem))
}
