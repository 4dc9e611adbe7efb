//! Just-in-time users: the row for a user id is created on its first
//! authenticated request and `last_seen_at` refreshed at most once a minute.
//!
//! [`UserTracker::seen`] runs on every authenticated request, so it decides in
//! memory and hands the rare write to a background writer over a bounded
//! channel. It must never block the request, fail it, or grow without bound;
//! a lost write only delays a `last_seen_at` (or the row) by a request.
//!
//! The writer drains the channel on a short tick instead of waiting on it: a
//! receiver that waits is woken by every send, and waking another thread for each
//! new user costs more than the user's request itself under load. A tick batches
//! whatever arrived into one transaction for free.

use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Store;

/// A user's `last_seen_at` is written at most once per this many seconds.
const WRITE_EVERY_SECS: i64 = 60;
/// Pending writes; beyond this the database is not keeping up and writes are dropped.
const CHANNEL_CAPACITY: usize = 16_384;
/// How often the writer looks for pending writes: the most a new user's row waits.
const WRITE_TICK: Duration = Duration::from_millis(50);
/// Users remembered; an evicted user just costs one more write.
const CACHE_CAPACITY: usize = 100_000;
/// Most writes committed in one transaction.
const MAX_BATCH: usize = 1024;
/// While the database keeps failing, warn on the first failure and then every this many.
const WARN_EVERY_FAILURES: u64 = 100;

/// Records that users were seen, writing to the database at most once a minute
/// per user. Cheap to clone; the writer ends when the last clone is dropped.
#[derive(Clone)]
pub struct UserTracker {
    /// User id → the unix time of the last write handed to the writer.
    last_written: Arc<Cache<String, i64>>,
    writes: mpsc::Sender<(String, i64)>,
}

impl std::fmt::Debug for UserTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTracker")
            .field("remembered_users", &self.last_written.len())
            .field(
                "pending_writes",
                &(self.writes.max_capacity() - self.writes.capacity()),
            )
            .finish()
    }
}

impl UserTracker {
    /// Starts the background writer on the current Tokio runtime (actix's
    /// included) and returns the tracker that feeds it.
    /// The writer ends once every clone of the tracker is dropped; its handle lets the
    /// owner end it sooner.
    pub fn spawn(store: Store) -> (UserTracker, JoinHandle<()>) {
        let last_written = Arc::new(Cache::new(CACHE_CAPACITY));
        let (writes, mut pending) = mpsc::channel::<(String, i64)>(CHANNEL_CAPACITY);
        let cache = Arc::clone(&last_written);
        let writer = tokio::spawn(async move {
            let mut failures: u64 = 0;
            let mut tick = tokio::time::interval(WRITE_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                // A full batch means more is waiting: write it without waiting for a tick.
                if batch.len() < MAX_BATCH {
                    tick.tick().await;
                }
                batch.clear();
                loop {
                    match pending.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        // Every tracker is gone: nothing will ever be seen again.
                        Err(mpsc::error::TryRecvError::Disconnected) if batch.is_empty() => {
                            return;
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                    if batch.len() == MAX_BATCH {
                        break;
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                match store.touch_users(&batch).await {
                    Ok(()) => {
                        if failures > 0 {
                            tracing::info!("user writes recovered after {failures} failure(s)");
                        }
                        failures = 0;
                    }
                    Err(e) => {
                        // Forget the users so their next requests try again rather
                        // than waiting out the minute.
                        for (user_id, _) in &batch {
                            cache.remove(user_id.as_str());
                        }
                        failures += 1;
                        if failures == 1 || failures.is_multiple_of(WARN_EVERY_FAILURES) {
                            tracing::warn!(
                                "could not record {} user(s) as seen ({failures} failure(s) in a row): {e}",
                                batch.len()
                            );
                        }
                    }
                }
            }
        });
        let tracker = UserTracker {
            last_written,
            writes,
        };
        (tracker, writer)
    }

    /// Notes that `user_id` made an authenticated request at unix time `now`.
    ///
    /// A user written less than a minute ago costs a cache lookup and nothing
    /// else. Otherwise the write is queued for the background writer; if the
    /// queue is full it is dropped (logged at debug) and the next request
    /// retries. Two simultaneous first requests of one user may both queue a
    /// write; the write is an idempotent upsert, so that is harmless.
    pub fn seen(&self, user_id: &str, now: i64) {
        if let Some(last) = self.last_written.get(user_id) {
            // A clock that stepped back counts as recent, not as a reason to write.
            if now - last < WRITE_EVERY_SECS {
                return;
            }
        }
        self.last_written.insert(user_id.to_owned(), now);
        if let Err(e) = self.writes.try_send((user_id.to_owned(), now)) {
            self.last_written.remove(user_id);
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    tracing::debug!("user write queue full; dropped the write for {user_id}");
                }
                mpsc::error::TrySendError::Closed(_) => {
                    tracing::debug!("user writer stopped; dropped the write for {user_id}");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {

    use super::*;
    use crate::server::store::test_support::{last_seen, poll_until, test_database_urls};

    #[actix_rt::test]
    async fn writes_at_most_once_a_minute_per_user() {
        for url in test_database_urls().await.unwrap() {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            let observer = Store::connect(&url).await.unwrap();
            let (tracker, _writer) = UserTracker::spawn(store.clone());

            // Arrange: the first request creates the row.
            tracker.seen("user_a", 1_000);
            poll_until("the first write", async || {
                last_seen(&observer, "user_a").await == Some(Some(1_000))
            })
            .await;

            // Act: repeats within the minute, then another user. The writer is
            // FIFO, so once user_b's row exists any write for user_a's repeats
            // would have landed before it.
            for t in [1_001, 1_030, 1_059] {
                tracker.seen("user_a", t);
            }
            tracker.seen("user_b", 1_059);
            poll_until("user_b's row", async || {
                last_seen(&observer, "user_b").await.is_some()
            })
            .await;
            assert_eq!(last_seen(&observer, "user_a").await, Some(Some(1_000)));

            // A minute after the last write, one more.
            tracker.seen("user_a", 1_060);
            tracker.seen("user_a", 1_061);
            poll_until("the refresh", async || {
                last_seen(&observer, "user_a").await == Some(Some(1_060))
            })
            .await;
            tracker.seen("user_c", 1_061);
            poll_until("user_c's row", async || {
                last_seen(&observer, "user_c").await.is_some()
            })
            .await;
            assert_eq!(last_seen(&observer, "user_a").await, Some(Some(1_060)));
        }
    }

    #[actix_rt::test]
    async fn a_failing_database_never_reaches_the_caller_and_is_retried() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let (tracker, _writer) = UserTracker::spawn(store.clone());
        store.close().await;

        tracker.seen("user_a", 1_000);
        assert_eq!(tracker.last_written.get("user_a"), Some(1_000));
        // The failed write made the tracker forget the user, so the next request retries.
        poll_until("the user to be forgotten", async || {
            tracker.last_written.get("user_a").is_none()
        })
        .await;
        tracker.seen("user_a", 1_001);
        assert_eq!(tracker.last_written.get("user_a"), Some(1_001));
    }

    #[actix_rt::test]
    async fn a_full_queue_drops_the_write_without_blocking() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        // No migration: the writer's statements fail, which is fine here.
        let (tracker, _writer) = UserTracker::spawn(store);
        // Not yielding to the runtime, so the writer cannot drain the queue.
        for i in 0..CHANNEL_CAPACITY + 10 {
            tracker.seen(&format!("user_{i}"), 1_000);
        }
        let dropped = format!("user_{}", CHANNEL_CAPACITY + 5);
        assert!(tracker.last_written.get(dropped.as_str()).is_none());
        assert_eq!(tracker.last_written.get("user_0"), Some(1_000));
    }
}
