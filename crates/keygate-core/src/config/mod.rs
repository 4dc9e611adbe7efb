//! Configuration of verification: the [`AuthenticatorBuilder`], the environment
//! variables that fill it, and the readers of their values. Every check happens
//! before anything starts; a problem is one [`ConfigError`] naming the variable.

pub mod builder;
pub mod env;
pub mod error;
pub mod values;

pub use builder::AuthenticatorBuilder;
pub use error::ConfigError;
