//! Waiting for something asynchronous to become true, with a deadline.

use std::time::{Duration, Instant};

/// How long tests wait for background work (database writes, revocation polls).
pub const SETTLE: Duration = Duration::from_secs(10);

/// Polls `check` every 20 ms until it holds; panics naming `what` after `timeout`.
pub async fn poll_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
