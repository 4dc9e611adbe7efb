//! The keygate service (feature `server`): the binary's commands, configuration from
//! the environment, the application with its routes, the database, Clerk webhooks,
//! metrics, logging and the development issuer.
//!
//! Everything here is built on the library's public API only, as any embedding
//! application would use it; see `ARCHITECTURE.md` for the map.
//!
//! The modules are private to the crate: what is public here is what the `keygate`
//! binary, the integration tests and the benchmarks call.

pub(crate) mod app;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod cors;
pub(crate) mod dev;
pub(crate) mod gateway;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod observer;
pub(crate) mod request_id;
pub(crate) mod routes;
pub(crate) mod store;
pub(crate) mod telemetry;
pub(crate) mod webhooks;

pub use app::{Application, StartError};
pub use cli::main;
pub use config::{Config, SERVER_VARIABLES, ServerConfig};
pub use gateway::identity_token::{IdentityConfig, IdentityTokens};
