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
mod billing;
mod cache;
mod caddy;
mod clerk;
mod conformance;
mod cors;
mod dev;
mod differential;
mod embed;
mod failures;
mod fastapi;
mod faults;
mod firstrun;
mod gateway;
mod gateway_attacks;
mod hs256;
mod identity_token;
mod jwks;
mod mint;
mod nginx;
mod observability;
mod ops;
mod persistence;
mod replicas;
mod rotation;
mod vectors;
mod webhooks;
mod websockets;
