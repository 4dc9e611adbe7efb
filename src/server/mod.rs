//! The keygate service (feature `server`): the binary's commands, configuration from
//! the environment, the application with its routes, the database, Clerk webhooks,
//! metrics, logging and the development issuer.
//!
//! Everything here is built on the library's public API only, as any embedding
//! application would use it; see `ARCHITECTURE.md` for the map.

pub mod app;
pub mod cli;
pub mod config;
pub mod cors;
pub mod dev;
pub mod gateway;
pub mod logging;
pub mod metrics;
pub mod request_id;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod webhooks;

pub use app::{Application, StartError};
pub use config::{Config, ServerConfig};
