//! Clerk webhooks.
pub mod clerk;
