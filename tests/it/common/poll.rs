//! Waiting for something asynchronous to become true, with a deadline: the support
//! crate's one polling loop.

pub use keygate_test_support::poll::{SETTLE, eventually, poll_until};
