//! Waiting for something asynchronous to become true, with a deadline: the one
//! polling loop of the tests.

use std::time::{Duration, Instant};

/// How long tests wait for background work (database writes, revocation polls).
pub const SETTLE: Duration = Duration::from_secs(10);

/// How often a condition is checked.
const INTERVAL: Duration = Duration::from_millis(20);

/// Checks `check` every 20 ms until it holds; returns whether it did within `timeout`.
/// For a test that reports the failure itself, with what it collected while waiting.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// [`eventually`], failing the test with `what` when `check` does not hold in time.
pub async fn poll_until(what: &str, timeout: Duration, check: impl AsyncFnMut() -> bool) {
    assert!(
        eventually(timeout, check).await,
        "timed out after {timeout:?} waiting for {what}"
    );
}
