//! keygate's integration tests: one binary, one module per capability.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code
)]

mod common;

mod attacks;
mod clerk;
mod failures;
mod hs256;
mod jwks;
mod persistence;
mod rotation;
mod vectors;
mod webhooks;
