//! The in-memory set of revoked session ids and the loop that keeps it in step
//! with the database.
//!
//! Every authenticated request asks [`RevocationSet::is_revoked`], so that call
//! is a lock-free, allocation-free read of an immutable snapshot and never touches
//! the database. The set is filled once before the server accepts a request
//! ([`RevocationSet::load`]) and then only grows by the rows newer than the last one
//! it has seen ([`RevocationSet::poll`]): the work of a poll does not grow with the
//! number of revoked sessions. [`spawn_revocation_sync`] polls every
//! `REVOCATION_POLL_SECS` and, on PostgreSQL, whenever the replica's listening
//! connection hears a revocation committed by any replica. A failing database only
//! keeps the last snapshot in force; it never clears it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{RevocationListener, Store, StoreError};
use crate::RevocationCheck;
use crate::clock::SharedClock;

/// How often the sync loop deletes expired rows (and forgets expired ids); they
/// are harmless meanwhile.
const PURGE_EVERY_SECS: i64 = 600;
/// Svix gives up redelivering long before this, so older idempotency records can go.
const WEBHOOK_EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// While the database keeps failing, warn on the first failure and then every this many.
const WARN_EVERY_FAILURES: u64 = 60;
/// Rows read by one query of a poll; a poll that gets a full page asks for the next.
const POLL_BATCH: i64 = 1000;
/// Rows read by one query of the first load.
const LOAD_BATCH: i64 = 10_000;
/// The delta is folded into the base once it holds this many ids. Each change copies
/// the delta (so it must stay small) and folding copies the base (so it must be rare):
/// with this bound a change costs at most a copy of this many entries, and a fold
/// happens at most once per this many new revocations.
const DELTA_LIMIT: usize = 1024;
/// First wait before reopening a lost listening connection; doubles up to the maximum.
const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reopen the listening connection.
const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// How often the listening connection is checked with a round trip.
const LISTENER_PING_EVERY: Duration = Duration::from_secs(30);
/// How long that round trip may take before the connection counts as lost.
const LISTENER_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Revoked ids and until when (unix seconds) their tokens are refused.
type Entries = HashMap<Arc<str>, i64>;

/// What readers see: a large base shared between snapshots, and the ids added since
/// it was built. Every snapshot is immutable once published.
#[derive(Default)]
struct Snapshot {
    base: Arc<Entries>,
    delta: Entries,
    /// Distinct ids in `base` and `delta`.
    len: usize,
    /// The earliest expiry of any id (`i64::MAX` when empty), so a prune that would
    /// drop nothing costs nothing.
    earliest: i64,
}

impl Snapshot {
    fn empty() -> Snapshot {
        Snapshot {
            earliest: i64::MAX,
            ..Snapshot::default()
        }
    }

    fn expiry(&self, sid: &str) -> Option<i64> {
        self.delta.get(sid).or_else(|| self.base.get(sid)).copied()
    }
}

/// The revoked session ids in force on this replica; cheap to clone (clones share the set).
#[derive(Clone)]
pub struct RevocationSet {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Snapshot>,
    /// Serialises writers (a poll, a local insert, a prune): each builds the next
    /// snapshot from the current one, and two at once would lose one's change.
    writer: Mutex<Cursor>,
    /// Told of every session id that becomes revoked after the first load (the
    /// gateway closes the session's WebSockets).
    on_revoked: OnceLock<RevokedHook>,
}

/// What is told of newly revoked session ids.
type RevokedHook = Box<dyn Fn(&str) + Send + Sync>;

/// The position of this replica in the database's change sequence.
#[derive(Default)]
struct Cursor {
    /// The `seq` of the newest row applied (0: none).
    last_seq: i64,
}

impl Default for RevocationSet {
    fn default() -> Self {
        RevocationSet {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(Snapshot::empty()),
                writer: Mutex::new(Cursor::default()),
                on_revoked: OnceLock::new(),
            }),
        }
    }
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
        let snapshot = self.inner.current.load();
        snapshot.delta.contains_key(sid) || snapshot.base.contains_key(sid)
    }

    /// Adds a session id at once, revoked until `expires_at` (unix seconds), after its
    /// revocation was committed to the database, without waiting for the next poll.
    /// The poll that later reads the same row changes nothing.
    pub fn insert(&self, sid: &str, expires_at: i64) {
        let mut cursor = self.writer();
        self.apply(&mut cursor, [(sid, expires_at)]);
    }

    /// Calls `hook` with every session id revoked from now on, whichever way the
    /// revocation came (a webhook on this replica, a notification or a poll). Set once;
    /// a second hook is ignored. `hook` runs while the set's writer lock is held, so it
    /// must be quick and must not touch the set.
    pub fn on_revoked(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.on_revoked.set(Box::new(hook));
    }

    /// The number of revoked ids in force.
    pub fn len(&self) -> usize {
        self.inner.current.load().len
    }

    /// Whether no id is revoked.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads every unexpired revocation from the database (before the server takes
    /// its first request) and adds it to the set; on error the set is left as it
    /// was. Returns the new size.
    pub async fn load(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        let mut entries = Entries::new();
        let mut last_seq = self.writer().last_seq;
        loop {
            let rows = store.revocations_after(last_seq, LOAD_BATCH).await?;
            let full = rows.len() as i64 >= LOAD_BATCH;
            for row in rows {
                last_seq = last_seq.max(row.seq);
                if row.expires_at > now {
                    let expiry = entries.entry(Arc::from(row.session_id)).or_insert(i64::MIN);
                    *expiry = (*expiry).max(row.expires_at);
                }
            }
            if !full {
                break;
            }
        }
        let mut cursor = self.writer();
        // One new base: applying the rows one by one would fold the delta again and
        // again for a large table.
        let current = self.inner.current.load_full();
        for (sid, expiry) in current.base.iter().chain(&current.delta) {
            let kept = entries.entry(Arc::clone(sid)).or_insert(i64::MIN);
            *kept = (*kept).max(*expiry);
        }
        let earliest = entries.values().copied().min().unwrap_or(i64::MAX);
        let len = entries.len();
        self.inner.current.store(Arc::new(Snapshot {
            base: Arc::new(entries),
            delta: Entries::new(),
            len,
            earliest,
        }));
        cursor.last_seq = cursor.last_seq.max(last_seq);
        Ok(len)
    }

    /// Reads the revocations written since the last one this set has seen and adds
    /// the unexpired ones; on error the set is left as it was. Returns how many rows
    /// were read.
    pub async fn poll(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        let mut read = 0;
        loop {
            let after = self.writer().last_seq;
            let rows = store.revocations_after(after, POLL_BATCH).await?;
            let full = rows.len() as i64 >= POLL_BATCH;
            read += rows.len();
            let Some(newest) = rows.last().map(|row| row.seq) else {
                break;
            };
            let mut cursor = self.writer();
            self.apply(
                &mut cursor,
                rows.iter()
                    .filter(|row| row.expires_at > now)
                    .map(|row| (row.session_id.as_str(), row.expires_at)),
            );
            cursor.last_seq = cursor.last_seq.max(newest);
            if !full {
                break;
            }
        }
        Ok(read)
    }

    /// Forgets the ids whose expiry is at or before `now`; returns how many. Costs a
    /// copy of the set when something expired, nothing otherwise.
    pub fn prune(&self, now: i64) -> usize {
        let _cursor = self.writer();
        let current = self.inner.current.load_full();
        if current.earliest > now {
            return 0;
        }
        let mut kept = Entries::with_capacity(current.len);
        for (sid, expiry) in current.base.iter().chain(&current.delta) {
            if *expiry > now {
                let entry = kept.entry(Arc::clone(sid)).or_insert(i64::MIN);
                *entry = (*entry).max(*expiry);
            }
        }
        let removed = current.len - kept.len();
        let earliest = kept.values().copied().min().unwrap_or(i64::MAX);
        let len = kept.len();
        self.inner.current.store(Arc::new(Snapshot {
            base: Arc::new(kept),
            delta: Entries::new(),
            len,
            earliest,
        }));
        removed
    }

    /// Publishes a snapshot with `rows` added (an id already known keeps the later
    /// expiry). Copies the delta, and the base only when the delta outgrew
    /// [`DELTA_LIMIT`]; publishes nothing when nothing changed.
    fn apply<'a>(&self, _cursor: &mut Cursor, rows: impl IntoIterator<Item = (&'a str, i64)>) {
        let current = self.inner.current.load_full();
        let mut delta: Option<Entries> = None;
        let mut len = current.len;
        let mut earliest = current.earliest;
        let mut newly = Vec::new();
        for (sid, expires_at) in rows {
            let known = delta
                .as_ref()
                .and_then(|d| d.get(sid).copied())
                .or_else(|| current.expiry(sid));
            if known.is_some_and(|known| known >= expires_at) {
                continue;
            }
            if known.is_none() {
                len += 1;
            }
            earliest = earliest.min(expires_at);
            delta
                .get_or_insert_with(|| current.delta.clone())
                .insert(Arc::from(sid), expires_at);
            if known.is_none() && self.inner.on_revoked.get().is_some() {
                newly.push(sid);
            }
        }
        let Some(delta) = delta else {
            return;
        };
        let next = if delta.len() >= DELTA_LIMIT {
            let mut base = Entries::clone(&current.base);
            base.extend(delta);
            Snapshot {
                base: Arc::new(base),
                delta: Entries::new(),
                len,
                earliest,
            }
        } else {
            Snapshot {
                base: Arc::clone(&current.base),
                delta,
                len,
                earliest,
            }
        };
        self.inner.current.store(Arc::new(next));
        // After the new snapshot is published: a socket opened from here on is
        // refused by the set, one opened before is closed by the hook.
        if let Some(hook) = self.inner.on_revoked.get() {
            for sid in newly {
                hook(sid);
            }
        }
    }

    fn writer(&self) -> MutexGuard<'_, Cursor> {
        // The cursor is a number, consistent after any panic, so a poisoned lock
        // is safe to use.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn parts(&self) -> (usize, usize) {
        let snapshot = self.inner.current.load();
        (snapshot.base.len(), snapshot.delta.len())
    }
}

/// What the sync loop reports (metrics, in the service). Every method does nothing
/// by default, so `()` reports nothing.
pub trait SyncObserver: Send + Sync + 'static {
    /// A poll ended, successfully or not, after `elapsed`; `revoked` ids are in force.
    fn polled(&self, ok: bool, elapsed: Duration, revoked: usize) {
        let _ = (ok, elapsed, revoked);
    }

    /// The listening connection is up (subscribed) or down.
    fn listening(&self, up: bool) {
        let _ = up;
    }

    /// The listening connection was re-established after it had been lost.
    fn reconnected(&self) {}
}

impl SyncObserver for () {}

/// Starts the background work that keeps `set` in step with the database: a poll
/// every `poll_interval` (the first one at once) that reads only the rows newer than
/// the last one seen, and, on PostgreSQL, a connection listening for
/// `NOTIFY keygate_revocations` that wakes the poll whenever any replica commits a
/// revocation. Notifications arriving during a poll cause one more poll, not one each.
///
/// When the listening connection drops it is reopened with exponential backoff (100 ms
/// doubling to 10 s, with jitter), and the set is polled right after it is back,
/// since notifications sent meanwhile are lost; the periodic poll covers the gap.
/// Every ten minutes, expired revocations and month-old webhook records are purged
/// from the database and expired ids dropped from the set.
///
/// A failing poll is logged as a warning (the first failure and then every 60th)
/// and the last set stays in force; the loop keeps going. The poll interval and the
/// backoff run on Tokio's timer, not the injected clock: they pace database
/// traffic, like network timeouts; expiry reads `clock`. Must be called within a
/// Tokio runtime (actix's included).
///
/// The work runs until its task is aborted: the application aborts it once the
/// server has stopped; dropping the handle detaches it.
pub fn spawn_revocation_sync(
    store: Store,
    set: RevocationSet,
    poll_interval: Duration,
    clock: SharedClock,
    observer: impl SyncObserver,
) -> JoinHandle<()> {
    // tokio's interval panics on zero.
    let poll_interval = poll_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let wake = Notify::new();
        tokio::join!(
            listen(&store, &wake, &observer),
            poll_loop(&store, &set, poll_interval, &clock, &wake, &observer),
        );
    })
}

async fn poll_loop(
    store: &Store,
    set: &RevocationSet,
    poll_interval: Duration,
    clock: &SharedClock,
    wake: &Notify,
    observer: &impl SyncObserver,
) {
    let mut ticker = tokio::time::interval(poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u64 = 0;
    let mut last_purge: Option<i64> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = wake.notified() => {}
        }
        let now = i64::try_from(clock.unix_secs()).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        let polled = set.poll(store, now).await;
        observer.polled(polled.is_ok(), started.elapsed(), set.len());
        match polled {
            Ok(_) => {
                if failures > 0 {
                    tracing::info!("revocation sync recovered after {failures} failed poll(s)");
                }
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(WARN_EVERY_FAILURES) {
                    tracing::warn!(
                        "revocation sync: poll failed ({failures} in a row), \
                         keeping the last {} revoked session(s): {e}",
                        set.len()
                    );
                }
                continue;
            }
        }
        if last_purge.is_none_or(|at| now.saturating_sub(at) >= PURGE_EVERY_SECS) {
            last_purge = Some(now);
            purge(store, now).await;
            let forgotten = set.prune(now);
            if forgotten > 0 {
                tracing::debug!("forgot {forgotten} expired session revocation(s)");
            }
        }
    }
}

/// Keeps a listening connection open (PostgreSQL only) and turns its notifications
/// into wake-ups of the poll. Returns at once on SQLite.
async fn listen(store: &Store, wake: &Notify, observer: &impl SyncObserver) {
    let mut backoff = RECONNECT_INITIAL;
    let mut was_up = false;
    let mut failures: u64 = 0;
    loop {
        match store.listen_for_revocations().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                observer.listening(true);
                if was_up {
                    observer.reconnected();
                    tracing::info!("revocation listener reconnected");
                } else if failures > 0 {
                    tracing::info!("revocation listener connected after {failures} attempt(s)");
                }
                was_up = true;
                failures = 0;
                backoff = RECONNECT_INITIAL;
                // Anything committed while nothing listened was not announced here.
                wake.notify_one();
                let lost = relay(&mut listener, wake).await;
                observer.listening(false);
                tracing::warn!(
                    "revocation listener lost its connection ({lost}); reconnecting, \
                     and polling meanwhile"
                );
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(WARN_EVERY_FAILURES) {
                    tracing::warn!(
                        "revocation listener: cannot connect ({failures} attempt(s) in a row), \
                         relying on the poll: {e}"
                    );
                }
            }
        }
        // Jitter keeps replicas that lost the same server from reconnecting in step.
        tokio::time::sleep(backoff.mul_f64(rand::random_range(0.75..=1.0))).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Wakes the poll for every notification until the connection fails; returns why.
async fn relay(listener: &mut RevocationListener, wake: &Notify) -> StoreError {
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + LISTENER_PING_EVERY,
        LISTENER_PING_EVERY,
    );
    loop {
        // The select only decides; the listener is used again once both futures are gone.
        let ping_due = tokio::select! {
            received = listener.next() => match received {
                Ok(()) => false,
                Err(e) => return e,
            },
            _ = ping.tick() => true,
        };
        if !ping_due {
            wake.notify_one();
            continue;
        }
        match tokio::time::timeout(LISTENER_PING_TIMEOUT, listener.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e,
            Err(_) => return StoreError::ListenerLost,
        }
    }
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
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::*;
    use crate::server::store::Backend;
    use crate::server::store::test_support::{
        poll_until, test_database_urls, test_stores, unix_now,
    };

    #[test]
    fn local_inserts_are_revoked_at_once_and_keep_the_later_expiry() {
        let set = RevocationSet::default();
        assert!(set.is_empty());
        set.insert("sess_a", 1_000);
        set.insert("sess_a", 500);
        assert!(set.is_revoked("sess_a"));
        assert!(!set.is_revoked("sess_b"));
        assert_eq!(set.len(), 1);

        // The earlier expiry did not shorten it; a later one lengthens it.
        assert_eq!(set.prune(999), 0);
        assert!(set.is_revoked("sess_a"));
        set.insert("sess_a", 2_000);
        assert_eq!(set.prune(1_500), 0);
        assert!(set.is_revoked("sess_a"));

        let clone = set.clone();
        clone.insert("sess_c", 3_000);
        assert!(set.is_revoked("sess_c"));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn expired_ids_are_forgotten_by_the_prune() {
        let set = RevocationSet::default();
        set.insert("sess_short", 100);
        set.insert("sess_long", 200);
        assert_eq!(set.prune(99), 0);
        assert!(set.is_revoked("sess_short"));
        // Expiry is exclusive, as in the database's purge.
        assert_eq!(set.prune(100), 1);
        assert!(!set.is_revoked("sess_short"));
        assert!(set.is_revoked("sess_long"));
        assert_eq!(set.len(), 1);
        assert_eq!(set.prune(100), 0);
        assert_eq!(set.prune(200), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn the_delta_is_folded_into_the_base_when_it_outgrows_its_limit() {
        let set = RevocationSet::default();
        for n in 0..DELTA_LIMIT - 1 {
            set.insert(&format!("sess_{n}"), 1_000);
        }
        assert_eq!(set.parts(), (0, DELTA_LIMIT - 1));
        set.insert(&format!("sess_{}", DELTA_LIMIT - 1), 1_000);
        assert_eq!(set.parts(), (DELTA_LIMIT, 0));

        // An id already in the base is not copied into the delta again...
        set.insert("sess_0", 1_000);
        assert_eq!(set.parts(), (DELTA_LIMIT, 0));
        // ...unless its expiry moves, and then it is counted once.
        set.insert("sess_0", 5_000);
        assert_eq!(set.parts(), (DELTA_LIMIT, 1));
        assert_eq!(set.len(), DELTA_LIMIT);
        set.insert("sess_new", 1_000);
        assert_eq!(set.len(), DELTA_LIMIT + 1);
        for n in 0..DELTA_LIMIT {
            assert!(set.is_revoked(&format!("sess_{n}")), "sess_{n}");
        }

        // The prune keeps the later expiry of an id that is in both.
        assert_eq!(set.prune(1_000), DELTA_LIMIT);
        assert!(set.is_revoked("sess_0"));
        assert_eq!(set.len(), 1);
        assert_eq!(set.parts(), (1, 0));
    }

    #[actix_rt::test]
    async fn load_and_poll_read_only_what_is_new_and_unexpired() {
        for store in test_stores().await.unwrap() {
            let backend = store.backend();
            let now = unix_now();
            store
                .revoke_session("sess_before", now, now + 3600)
                .await
                .unwrap();
            store
                .revoke_session("sess_expired", now - 10, now - 1)
                .await
                .unwrap();
            let set = RevocationSet::default();
            set.insert("sess_local", now + 3600);
            assert_eq!(set.load(&store, now).await.unwrap(), 2, "{backend:?}");
            assert!(set.is_revoked("sess_before"), "{backend:?}");
            assert!(set.is_revoked("sess_local"), "{backend:?}");
            assert!(!set.is_revoked("sess_expired"), "{backend:?}");

            assert_eq!(set.poll(&store, now).await.unwrap(), 0, "{backend:?}");
            store
                .revoke_session("sess_after", now, now + 3600)
                .await
                .unwrap();
            // A revocation that moves an expiry later is a change as well.
            store
                .revoke_session("sess_before", now, now + 7200)
                .await
                .unwrap();
            assert_eq!(set.poll(&store, now).await.unwrap(), 2, "{backend:?}");
            assert!(set.is_revoked("sess_after"), "{backend:?}");
            assert_eq!(set.prune(now + 3600), 2, "{backend:?}");
            assert!(set.is_revoked("sess_before"), "{backend:?}");
            assert_eq!(set.poll(&store, now).await.unwrap(), 0, "{backend:?}");
        }
    }

    #[actix_rt::test]
    async fn a_poll_pages_through_more_rows_than_one_batch() {
        let store = test_stores().await.unwrap().remove(0);
        let set = RevocationSet::default();
        set.load(&store, 0).await.unwrap();
        let rows = POLL_BATCH as usize * 2 + 5;
        let mut tx = store.pool.begin().await.unwrap();
        for n in 0..rows {
            store
                .revoke_session_on(&mut tx, &format!("sess_{n}"), 1, 1_000)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(set.poll(&store, 1).await.unwrap(), rows);
        assert_eq!(set.len(), rows);
        assert!(set.is_revoked(&format!("sess_{}", rows - 1)));
    }

    #[derive(Default)]
    struct Recorder {
        failures: AtomicU64,
        listening: AtomicBool,
    }

    impl SyncObserver for Arc<Recorder> {
        fn polled(&self, ok: bool, _: Duration, _: usize) {
            if !ok {
                self.failures.fetch_add(1, Ordering::SeqCst);
            }
        }

        fn listening(&self, up: bool) {
            self.listening.store(up, Ordering::SeqCst);
        }
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
                .revoke_session("sess_expired", now - 10, now - 1)
                .await
                .unwrap();

            let set = RevocationSet::default();
            set.load(&store, now).await.unwrap();
            let sync = spawn_revocation_sync(
                store.clone(),
                set.clone(),
                Duration::from_millis(50),
                crate::clock::system(),
                (),
            );

            other
                .revoke_session("sess_after", now, now + 3600)
                .await
                .unwrap();
            poll_until("the new revocation", async || set.is_revoked("sess_after")).await;
            assert!(!set.is_revoked("sess_expired"));

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
    async fn on_postgres_a_notification_wakes_the_poll() {
        let stores: Vec<Store> = test_stores()
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.backend() == Backend::Postgres)
            .collect();
        for store in stores {
            let set = RevocationSet::default();
            let recorder = Arc::new(Recorder::default());
            // No periodic poll during the test: only a notification can bring the row.
            let sync = spawn_revocation_sync(
                store.clone(),
                set.clone(),
                Duration::from_secs(3600),
                crate::clock::system(),
                recorder.clone(),
            );
            poll_until("the listener", async || {
                recorder.listening.load(Ordering::SeqCst)
            })
            .await;
            let now = unix_now();
            store
                .revoke_session("sess_pushed", now, now + 3600)
                .await
                .unwrap();
            poll_until("the pushed revocation", async || {
                set.is_revoked("sess_pushed")
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
        set.load(&store, now).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        let sync = spawn_revocation_sync(
            store.clone(),
            set.clone(),
            Duration::from_millis(10),
            crate::clock::system(),
            recorder.clone(),
        );

        store.close().await;
        poll_until("failing polls", async || {
            recorder.failures.load(Ordering::SeqCst) > 3
        })
        .await;
        assert!(set.is_revoked("sess_a"));
        assert!(!sync.is_finished());
        sync.abort();
    }
}
