//! keygate's integration tests: one binary, one module per capability.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code
)]

mod common;

mod clerk;
mod dev;
mod failures;
mod hs256;
mod jwks;
mod mint;
mod rotation;
