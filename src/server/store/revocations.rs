//! The in-memory set of revoked session ids and the loop that keeps it in step
//! with the database.
//!
//! Every authenticated request asks [`RevocationSet::is_revoked`], so that call
//! is a lock-free read of an immutable snapshot and must never touch the
//! database. The [`spawn_revocation_sync`] loop reloads the snapshot every second, which
//! is how a revocation written by another replica (sharing PostgreSQL) is
//! enforced here within the SPEC's 5 seconds. A failing database only keeps the
//! last snapshot in force; it never clears it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use tokio::task::JoinHandle;

use super::{Store, StoreError};
use crate::RevocationCheck;
use crate::clock::SharedClock;

/// How long a locally inserted id survives reloads that do not contain it.
///
/// A reload whose query started before the webhook's commit does not see the
/// new row; without this, replacing the set would drop the id until the next
/// reload. Any reload started a minute after the commit sees it.
const LOCAL_INSERT_GRACE: Duration = Duration::from_secs(60);
/// How often the sync loop deletes expired rows; they are harmless meanwhile.
const PURGE_EVERY_SECS: i64 = 600;
/// Svix gives up redelivering long before this, so older idempotency records can go.
const WEBHOOK_EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// While the database keeps failing, warn on the first failure and then every this many.
const WARN_EVERY_FAILURES: u64 = 60;

/// The revoked session ids in force on this replica; cheap to clone (clones share the set).
#[derive(Clone, Default)]
pub struct RevocationSet {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: ArcSwap<HashSet<String>>,
    /// Ids inserted on this replica, kept across reloads for [`LOCAL_INSERT_GRACE`].
    local: Mutex<Vec<(Instant, String)>>,
}

impl std::fmt::Debug for RevocationSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationSet")
            .field("len", &self.len())
            .finish()
    }
}

impl RevocationCheck for RevocationSet {
    fn is_revoked(&self, session_id: &str) -> bool {
        RevocationSet::is_revoked(self, session_id)
    }
}

impl RevocationSet {
    /// Whether the session id is revoked.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.inner.current.load().contains(sid)
    }

    /// Adds a session id at once (after its revocation was committed to the
    /// database), without waiting for the next reload.
    pub fn insert(&self, sid: &str) {
        self.local_inserts().push((Instant::now(), sid.to_owned()));
        // Copy-on-write: revocations are rare, reads are on every request.
        self.inner.current.rcu(|set| {
            if set.contains(sid) {
                Arc::clone(set)
            } else {
                let mut next = HashSet::clone(set);
                next.insert(sid.to_owned());
                Arc::new(next)
            }
        });
    }

    /// Replaces the set with `all` (a fresh load from the database).
    ///
    /// Ids inserted on this replica during the last minute are kept even when
    /// `all` lacks them, because the load may have started before their commit.
    pub fn replace(&self, mut all: HashSet<String>) {
        let mut local = self.local_inserts();
        local.retain(|(at, _)| at.elapsed() < LOCAL_INSERT_GRACE);
        all.extend(local.iter().map(|(_, sid)| sid.clone()));
        // Stored while the lock is held so a concurrent insert cannot land
        // between reading `local` and storing, and then be overwritten.
        self.inner.current.store(Arc::new(all));
    }

    /// The number of revoked ids in force.
    pub fn len(&self) -> usize {
        self.inner.current.load().len()
    }

    /// Whether no id is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads the unexpired revocations from the database and replaces the set
    /// with them; on error the set is left as it was. Returns the new size.
    pub async fn reload(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        let all: HashSet<String> = store.revoked_sessions(now).await?.into_iter().collect();
        self.replace(all);
        Ok(self.len())
    }

    fn local_inserts(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, String)>> {
        // The guarded Vec is consistent after any panic in push/retain, so a
        // poisoned lock is safe to use.
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the background loop that reloads `set` from the database every
/// `interval` (1 s in production: another replica's revocation is then enforced
/// here within 5 s), beginning immediately, and every ten minutes purges
/// expired revocations and month-old webhook records.
///
/// A failing database is logged as a warning (the first failure and then every
/// 60th) and the last set stays in force; the loop keeps going. Must be called
/// within a Tokio runtime (actix's included); `tokio::spawn` is used rather
/// than `actix_rt::spawn` so it also runs under plain Tokio.
///
/// Each pass reports whether its reload succeeded to `report` (a metric in the
/// service). The loop runs until its task is aborted: the application aborts it once
/// the server has stopped; dropping the handle detaches it.
pub fn spawn_revocation_sync(
    store: Store,
    set: RevocationSet,
    interval: Duration,
    clock: SharedClock,
    report: impl Fn(bool) + Send + 'static,
) -> JoinHandle<()> {
    // tokio's interval panics on zero.
    let interval = interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures: u64 = 0;
        let mut last_purge: Option<i64> = None;
        loop {
            ticker.tick().await;
            let now = i64::try_from(clock.unix_secs()).unwrap_or(i64::MAX);
            let reloaded = set.reload(&store, now).await;
            report(reloaded.is_ok());
            match reloaded {
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(
                            "revocation sync recovered after {failures} failed reload(s)"
                        );
                    }
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(WARN_EVERY_FAILURES) {
                        tracing::warn!(
                            "revocation sync: reload failed ({failures} in a row), \
                             keeping the last {} revoked session(s): {e}",
                            set.len()
                        );
                    }
                    continue;
                }
            }
            if last_purge.is_none_or(|at| now.saturating_sub(at) >= PURGE_EVERY_SECS) {
                last_purge = Some(now);
                purge(&store, now).await;
            }
        }
    })
}

async fn purge(store: &Store, now: i64) {
    match store.purge_revocations(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!("purged {n} expired session revocation(s)"),
        Err(e) => tracing::warn!("purging expired session revocations failed: {e}"),
    }
    match store
        .purge_webhook_events(now - WEBHOOK_EVENT_RETENTION_SECS)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::debug!("purged {n} old webhook record(s)"),
        Err(e) => tracing::warn!("purging old webhook records failed: {e}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::server::store::test_support::{poll_until, test_database_urls, unix_now};

    #[test]
    fn insert_and_replace() {
        let set = RevocationSet::default();
        assert!(set.is_empty());
        set.insert("sess_a");
        set.insert("sess_a");
        assert!(set.is_revoked("sess_a"));
        assert!(!set.is_revoked("sess_b"));
        assert_eq!(set.len(), 1);

        // A reload that raced the local insert must not drop it.
        set.replace(HashSet::from(["sess_b".to_owned()]));
        assert!(set.is_revoked("sess_a"));
        assert!(set.is_revoked("sess_b"));

        // Ids that only the database knew about go away with the next load.
        set.replace(HashSet::new());
        assert!(!set.is_revoked("sess_b"));
        assert_eq!(set.len(), 1);

        let clone = set.clone();
        clone.insert("sess_c");
        assert!(set.is_revoked("sess_c"));
    }

    #[test]
    fn local_inserts_are_forgotten_after_the_grace_period() {
        let set = RevocationSet::default();
        let Some(long_ago) = Instant::now().checked_sub(LOCAL_INSERT_GRACE) else {
            return; // the monotonic clock started less than a minute ago
        };
        set.local_inserts().push((long_ago, "sess_old".to_owned()));
        set.replace(HashSet::new());
        assert!(!set.is_revoked("sess_old"));
        assert!(set.local_inserts().is_empty());
    }

    #[actix_rt::test]
    async fn sync_picks_up_another_replicas_revocation_and_stops_when_stopped() {
        for url in test_database_urls().await.unwrap() {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            // Another replica: its own pool on the same database.
            let other = Store::connect(&url).await.unwrap();
            let now = unix_now();
            other
                .revoke_session("sess_before", now, now + 3600)
                .await
                .unwrap();
            other
                .revoke_session("sess_expired", now - 10, now - 1)
                .await
                .unwrap();

            let set = RevocationSet::default();
            let sync = spawn_revocation_sync(
                store.clone(),
                set.clone(),
                Duration::from_millis(50),
                crate::clock::system(),
                |_| {},
            );

            poll_until("the initial load", async || set.is_revoked("sess_before")).await;
            assert!(!set.is_revoked("sess_expired"));

            other
                .revoke_session("sess_after", now, now + 3600)
                .await
                .unwrap();
            poll_until("the new revocation", async || set.is_revoked("sess_after")).await;

            // The first pass purged the expired row.
            poll_until("the purge", async || {
                let (rows,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM revoked_sessions WHERE session_id = 'sess_expired'",
                )
                .fetch_one(&other.pool)
                .await
                .unwrap();
                rows == 0
            })
            .await;

            sync.abort();
            poll_until("the loop to end", async || sync.is_finished()).await;
        }
    }

    #[actix_rt::test]
    async fn a_failing_database_keeps_the_last_set() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let now = unix_now();
        store
            .revoke_session("sess_a", now, now + 3600)
            .await
            .unwrap();
        let set = RevocationSet::default();
        let failures = Arc::new(AtomicU64::new(0));
        let counted = failures.clone();
        let sync = spawn_revocation_sync(
            store.clone(),
            set.clone(),
            Duration::from_millis(10),
            crate::clock::system(),
            move |ok| {
                if !ok {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        poll_until("the initial load", async || set.is_revoked("sess_a")).await;

        store.close().await;
        poll_until("failing reloads", async || {
            failures.load(Ordering::SeqCst) > 3
        })
        .await;
        assert!(set.is_revoked("sess_a"));
        assert!(!sync.is_finished());
    }
}
