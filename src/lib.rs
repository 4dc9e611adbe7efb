//! keygate: a standalone Actix-web service that guards HTTP routes with JSON Web Tokens.
//!
//! Clerk session tokens (RS256, keys from Clerk's JWKS) and tokens signed with a
//! shared secret (HS256/384/512) are verified by [`AuthUser`], an Actix extractor that
//! reads the key map published by the key-rotation actor in [`keys`]. The external
//! contract is `SPEC.md`; the layout is described in `ARCHITECTURE.md`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dev;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod routes;
pub mod store;
pub mod webhooks;

pub use app::{Keygate, run};
pub use auth::{AuthError, AuthUser, Org, require_auth};
pub use config::{ConfigError, Settings};
