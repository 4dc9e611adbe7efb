//! Persistence: the sqlx pool, the migrations and every SQL statement keygate runs.
//!
//! One [`Store`] talks to SQLite (the embedded default) or PostgreSQL (shared by
//! several replicas) through sqlx's `Any` driver, so most statements here are
//! portable SQL with `$n` placeholders, TEXT ids and BIGINT unix seconds. Writing a
//! revocation is the exception: each engine hands out the change sequence its own
//! way (see [`Store::revoke_session`]), and PostgreSQL also announces the write to
//! the replicas' listeners ([`listener`]). The request path must never wait on this
//! module: it reads the in-memory [`RevocationSet`] and hands user writes to the
//! [`UserTracker`]'s background writer. Errors never carry a password or any other
//! secret: a database that cannot be opened is named by its SQLite file or by its URL
//! with the password hidden.

pub mod listener;
pub mod revocations;
pub(crate) mod seen;
pub mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection};

pub use listener::RevocationListener;
pub use revocations::RevocationSet;

/// The connection pool. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where a [`RevocationListener`] connects (PostgreSQL only); holds the password.
    listen_options: Option<Arc<PgConnectOptions>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connect options: they carry the password.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The database engine behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (or in-memory database).
    Sqlite,
    /// A PostgreSQL server, possibly shared by several replicas.
    Postgres,
}

/// One row of `revoked_sessions` as the incremental poll reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// The session id (`sid` claim).
    pub session_id: String,
    /// Until when its tokens are refused (unix seconds).
    pub expires_at: i64,
    /// Its place in the change sequence: larger for every later write.
    pub seq: i64,
}

/// A failure of the database layer.
///
/// The messages name the operation and sqlx's description of the cause; sqlx
/// does not put connection URLs (and so passwords) into its errors, and
/// [`StoreError::Open`] prints the URL only through [`redact_url`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database of `DATABASE_URL` could not be opened: `target` names it (the
    /// SQLite file, or the URL with its password hidden).
    #[error("DATABASE_URL: cannot open {target}: {source}")]
    Open {
        /// What was opened, safe to print.
        target: String,
        /// sqlx's description of the cause.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be reached or a statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The connection listening for revocations was closed, stopped answering, or
    /// could not be opened in time.
    #[error("the listening connection was lost or timed out")]
    ListenerLost,
}

/// The profile fields of a user row, as filled in by Clerk webhooks.
///
/// A user created just in time by an authenticated request has a profile with
/// every optional field `None` until a `user.created`/`user.updated` arrives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// The user id (the token's user claim, Clerk's `user_…` id).
    pub user_id: String,
    /// The primary email address.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Avatar URL.
    pub image_url: Option<String>,
}

/// What a verified webhook event does to the database, applied together with
/// its idempotency record by [`Store::apply_webhook_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookEffect {
    /// Create or update the user's profile.
    UpsertProfile(Profile),
    /// Delete the user row.
    DeleteUser(String),
    /// Revoke a session until `expires_at` (unix seconds).
    RevokeSession {
        /// The session id (`sid` claim).
        session_id: String,
        /// When the row may be purged.
        expires_at: i64,
    },
    /// Record the event for idempotency only.
    Nothing,
}

/// Pool size for PostgreSQL; several replicas share the server, so stay modest.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// SQLite serialises writers anyway; a few connections let WAL readers run alongside.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Bounds how long a caller (a webhook, `/readyz`) waits on an unreachable database.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The session key of the advisory lock revocation writers take on PostgreSQL
/// (`kgrevoke` in ASCII); any constant works as long as nothing else uses it.
const REVOCATION_LOCK_KEY: i64 = 0x6b67_7265_766f_6b65;

/// The rows of the change sequence after `$1`, oldest first, at most `$2` of them.
const REVOCATIONS_AFTER_SQL: &str = "SELECT session_id, expires_at, seq FROM revoked_sessions \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

/// A revocation written on PostgreSQL: a new row takes the next sequence value by
/// default, and only an expiry that is later than the stored one counts as a change
/// (and takes a new value), so revoking twice never shortens a revocation.
const REVOKE_POSTGRES_SQL: &str = "INSERT INTO revoked_sessions (session_id, revoked_at, expires_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (session_id) DO UPDATE SET expires_at = excluded.expires_at, \
     seq = nextval('revoked_sessions_seq') \
     WHERE excluded.expires_at > revoked_sessions.expires_at";

/// The same on SQLite, with the value just taken from `revocation_sequence`.
const REVOKE_SQLITE_SQL: &str = "INSERT INTO revoked_sessions (session_id, revoked_at, expires_at, seq) \
     VALUES ($1, $2, $3, (SELECT last_value FROM revocation_sequence)) \
     ON CONFLICT (session_id) DO UPDATE SET expires_at = excluded.expires_at, seq = excluded.seq \
     WHERE excluded.expires_at > revoked_sessions.expires_at";

/// Creates a user's row or refreshes its `last_seen_at`.
const TOUCH_USER_SQL: &str = "INSERT INTO users (id, created_at, updated_at, last_seen_at) VALUES ($1, $2, $2, $2) \
     ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at";

impl Store {
    /// Connects to `url` (`sqlite://…`, `sqlite::memory:` or `postgres://…`)
    /// without migrating.
    ///
    /// `sqlite://keygate.db?mode=rwc` creates the file. File databases are
    /// switched to WAL so readers do not block the writer; sqlx already sets a
    /// 5 s busy timeout. An in-memory database gets a single connection that is
    /// never recycled, since each new connection would otherwise see an empty
    /// database.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let memory = sqlite && (url.contains(":memory:") || url.contains("mode=memory"));

        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        options = if memory {
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else if sqlite {
            options.max_connections(SQLITE_MAX_CONNECTIONS)
        } else {
            options.max_connections(POSTGRES_MAX_CONNECTIONS)
        };
        if !memory {
            // One direct connection first: the pool would retry a refused
            // connection until its timeout and then report only "timed out",
            // while this surfaces the real cause (refused, bad password, no file).
            let mut probe =
                AnyConnection::connect(url)
                    .await
                    .map_err(|source| StoreError::Open {
                        target: describe_target(url),
                        source,
                    })?;
            if sqlite {
                // The journal mode is stored in the file, so setting it once is
                // enough. Switching needs an exclusive lock; if another process
                // holds the file the database still works in its current mode.
                if let Err(e) = sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&mut probe)
                    .await
                {
                    tracing::warn!("could not switch SQLite to WAL mode: {e}");
                }
            }
            probe.close().await?;
        }
        let listen_options = if sqlite {
            None
        } else {
            let options = PgConnectOptions::from_str(url)
                .map_err(|source| StoreError::Open {
                    target: describe_target(url),
                    source,
                })?
                .application_name(listener::LISTENER_APPLICATION_NAME);
            Some(Arc::new(options))
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                target: describe_target(url),
                source,
            })?;

        Ok(Store {
            pool,
            backend: if sqlite {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
            listen_options,
        })
    }

    /// The engine this store talks to.
    #[cfg(test)]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations of this engine (`migrations/sqlite/` or
    /// `migrations/postgres/`); already applied ones are skipped.
    ///
    /// Both directories begin with the same initial migration, byte for byte, as the
    /// single `migrations/` directory of earlier releases had it, so databases those
    /// releases migrated keep a matching checksum.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    #[cfg(test)]
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the user's row if it does not exist, else sets `last_seen_at`.
    pub async fn touch_user(&self, user_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(TOUCH_USER_SQL)
            .bind(user_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// [`Store::touch_user`] for many users in one transaction, so a burst of new users
    /// costs one commit (one fsync on SQLite) instead of one each.
    pub async fn touch_users(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        if let [(user_id, now)] = seen {
            return self.touch_user(user_id, *now).await;
        }
        let mut tx = self.pool.begin().await?;
        for (user_id, now) in seen {
            sqlx::query(TOUCH_USER_SQL)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user's profile, or `None` when there is no row for `user_id`.
    pub async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, email, first_name, last_name, image_url FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(user_id, email, first_name, last_name, image_url)| Profile {
                user_id,
                email,
                first_name,
                last_name,
                image_url,
            },
        ))
    }

    /// Creates the user with this profile, or replaces the profile fields of an
    /// existing row (keeping `created_at` and `last_seen_at`).
    #[cfg(test)]
    pub async fn upsert_profile(&self, p: &Profile, now: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.upsert_profile_on(&mut conn, p, now).await
    }

    /// Deletes the user's row; deleting a user that does not exist is not an error.
    #[cfg(test)]
    pub async fn delete_user(&self, user_id: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.delete_user_on(&mut conn, user_id).await
    }

    /// Records `session_id` as revoked until `expires_at`. Revoking it again keeps
    /// the first `revoked_at` and the later of the two expiries.
    ///
    /// Every write that changes the row gives it the next value of the change
    /// sequence, which [`Store::revocations_after`] pages through; values become
    /// visible in the order they were taken. On PostgreSQL the transaction also sends
    /// `NOTIFY keygate_revocations`, delivered to the replicas' listeners at commit.
    #[cfg(test)]
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        // One transaction: the sequence value, the row and the notification go together.
        let mut tx = self.pool.begin().await?;
        self.revoke_session_on(&mut tx, session_id, now, expires_at)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` revocations written after change `after` (a `seq` value; `0`
    /// for all), oldest first: the incremental poll. Expired rows not yet purged are
    /// included, so the caller's position in the sequence moves past them.
    pub async fn revocations_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(REVOCATIONS_AFTER_SQL)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(session_id, expires_at, seq)| RevokedSession {
                session_id,
                expires_at,
                seq,
            })
            .collect())
    }

    /// A connection listening for `NOTIFY keygate_revocations`; `None` on SQLite,
    /// where there is nothing to listen to. Each call opens a new connection.
    pub async fn listen_for_revocations(&self) -> Result<Option<RevocationListener>, StoreError> {
        match &self.listen_options {
            Some(options) => Ok(Some(RevocationListener::connect(options).await?)),
            None => Ok(None),
        }
    }

    /// The revoked session ids whose `expires_at` is after `now`.
    #[cfg(test)]
    pub async fn revoked_sessions(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT session_id FROM revoked_sessions WHERE expires_at > $1")
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(sid,)| sid).collect())
    }

    /// Deletes revocations that expired at or before `now`; returns how many.
    pub async fn purge_revocations(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revoked_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes idempotency records received before `before`; returns how many.
    ///
    /// Svix stops redelivering after a few days, so old records only take space.
    pub async fn purge_webhook_events(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records a webhook delivery; `false` means `svix_id` was seen before.
    #[cfg(test)]
    pub async fn record_webhook_event(
        &self,
        svix_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.record_webhook_event_on(&mut conn, svix_id, event_type, now)
            .await
    }

    /// Records the delivery and applies `effect` in one transaction, so a failure
    /// leaves neither behind and Svix's retry starts from scratch. Returns `false`
    /// (and changes nothing) when `svix_id` was seen before.
    pub async fn apply_webhook_event(
        &self,
        svix_id: &str,
        event_type: &str,
        effect: &WebhookEffect,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The idempotency insert comes first: on SQLite it takes the write lock
        // before anything is read, and on PostgreSQL a concurrent delivery of the
        // same id waits here for this transaction and then finds the row.
        if !self
            .record_webhook_event_on(&mut tx, svix_id, event_type, now)
            .await?
        {
            tx.rollback().await?;
            return Ok(false);
        }
        match effect {
            WebhookEffect::UpsertProfile(p) => self.upsert_profile_on(&mut tx, p, now).await?,
            WebhookEffect::DeleteUser(id) => self.delete_user_on(&mut tx, id).await?,
            WebhookEffect::RevokeSession {
                session_id,
                expires_at,
            } => {
                self.revoke_session_on(&mut tx, session_id, now, *expires_at)
                    .await?
            }
            WebhookEffect::Nothing => {}
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_profile_on(
        &self,
        conn: &mut AnyConnection,
        p: &Profile,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, first_name, last_name, image_url, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
             first_name = excluded.first_name, last_name = excluded.last_name, \
             image_url = excluded.image_url, updated_at = excluded.updated_at",
        )
        .bind(&p.user_id)
        .bind(&p.email)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(&p.image_url)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn delete_user_on(
        &self,
        conn: &mut AnyConnection,
        user_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Writes a revocation; `conn` must be inside a transaction (the lock and the
    /// sequence value are only right when they commit together with the row).
    async fn revoke_session_on(
        &self,
        conn: &mut AnyConnection,
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => {
                // Sequence values are handed out before commit, so without this two
                // writers could commit out of order, and a replica that already read
                // the later value would skip the earlier one for good. The lock is held
                // until this transaction ends; revocations are rare, the wait short.
                // `SELECT 1 FROM`: the Any driver cannot decode the function's void.
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(REVOCATION_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                let done = sqlx::query(REVOKE_POSTGRES_SQL)
                    .bind(session_id)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() > 0 {
                    // Sent at commit, and never when the transaction rolls back.
                    sqlx::query(listener::NOTIFY_SQL)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Backend::Sqlite => {
                // The UPDATE takes the write lock first, so no other writer can take
                // a value between this one and its commit.
                sqlx::query("UPDATE revocation_sequence SET last_value = last_value + 1")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(REVOKE_SQLITE_SQL)
                    .bind(session_id)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    async fn record_webhook_event_on(
        &self,
        conn: &mut AnyConnection,
        svix_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO webhook_events (svix_id, event_type, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (svix_id) DO NOTHING",
        )
        .bind(svix_id)
        .bind(event_type)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// What a database URL opens, for an error message: the SQLite file (with what is
/// wrong with its path, when something visibly is), or the URL without its password.
fn describe_target(url: &str) -> String {
    let Some(path) = sqlite_path(url) else {
        return redact_url(url);
    };
    let file = std::path::Path::new(path);
    let hint = match file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => format!(" (the directory {} does not exist)", dir.display()),
        _ if !file.exists() && !url.contains("mode=rwc") => {
            " (the file does not exist; add ?mode=rwc to the URL to create it)".to_string()
        }
        _ => String::new(),
    };
    format!("the SQLite file {path}{hint}")
}

/// The file path of a `sqlite:` URL as sqlx reads it (`sqlite://x.db`, `sqlite:x.db`,
/// `sqlite:///abs/x.db`), without its `?` options; `None` for other URLs and for
/// in-memory databases.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// A database URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Helpers shared by the store's unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod test_support {
    use std::time::{SystemTime, UNIX_EPOCH};

    use keygate_test_support::databases;
    use keygate_test_support::poll::SETTLE;

    use super::{Store, StoreError};

    pub(crate) use databases::with_database_name;

    /// The support crate's polling loop, with the tests' usual deadline.
    pub(crate) async fn poll_until(what: &str, check: impl AsyncFnMut() -> bool) {
        keygate_test_support::poll::poll_until(what, SETTLE, check).await;
    }

    /// Connected and migrated stores on fresh databases (SQLite, and PostgreSQL when
    /// `TEST_DATABASE_URL` is set).
    pub(crate) async fn test_stores() -> Result<Vec<Store>, StoreError> {
        let mut stores = Vec::new();
        for url in test_database_urls().await? {
            let store = Store::connect(&url).await?;
            store.migrate().await?;
            stores.push(store);
        }
        Ok(stores)
    }

    /// URLs of fresh, empty databases.
    pub(crate) async fn test_database_urls() -> Result<Vec<String>, StoreError> {
        Ok(databases::fresh_database_urls().await?)
    }

    /// Seconds since the Unix epoch by the system clock.
    pub(crate) fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// Rows in `users`, `webhook_events` and `revoked_sessions`.
    pub(crate) async fn row_counts(store: &Store) -> [i64; 3] {
        let mut counts = [0; 3];
        for (i, table) in ["users", "webhook_events", "revoked_sessions"]
            .iter()
            .enumerate()
        {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&store.pool)
                .await
                .unwrap();
            counts[i] = n;
        }
        counts
    }

    /// A user's `last_seen_at`: `None` without a row.
    pub(crate) async fn last_seen(store: &Store, id: &str) -> Option<Option<i64>> {
        sqlx::query_as::<_, (Option<i64>,)>("SELECT last_seen_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await
            .unwrap()
            .map(|(t,)| t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::test_support::{last_seen, test_database_urls, test_stores, with_database_name};
    use super::*;

    fn profile(id: &str) -> Profile {
        Profile {
            user_id: id.to_owned(),
            email: Some(format!("{id}@example.com")),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            image_url: Some("https://img.example.com/a.png".to_owned()),
        }
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database_name("postgres://postgres@127.0.0.1:5432/test", "kg_1"),
            "postgres://postgres@127.0.0.1:5432/kg_1"
        );
        assert_eq!(
            with_database_name("postgres://u:p@h/test?sslmode=disable", "kg_1"),
            "postgres://u:p@h/kg_1?sslmode=disable"
        );
        assert_eq!(
            with_database_name("postgres://h:5432", "kg_1"),
            "postgres://h:5432/kg_1"
        );
    }

    #[actix_rt::test]
    async fn in_memory_sqlite_keeps_its_schema() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store.touch_user("user_1", 100).await.unwrap();
        assert!(store.profile("user_1").await.unwrap().is_some());
    }

    #[actix_rt::test]
    async fn migrate_twice_is_a_no_op() {
        for url in test_database_urls().await.unwrap() {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            store.touch_user("user_1", 100).await.unwrap();
            store.migrate().await.unwrap();
            assert!(store.profile("user_1").await.unwrap().is_some(), "{url}");
            store.ping().await.unwrap();
        }
    }

    #[actix_rt::test]
    async fn touch_user_creates_then_updates_last_seen() {
        for store in test_stores().await.unwrap() {
            assert_eq!(last_seen(&store, "user_1").await, None);

            store.touch_user("user_1", 100).await.unwrap();
            assert_eq!(last_seen(&store, "user_1").await, Some(Some(100)));
            assert_eq!(
                store.profile("user_1").await.unwrap(),
                Some(Profile {
                    user_id: "user_1".to_owned(),
                    email: None,
                    first_name: None,
                    last_name: None,
                    image_url: None,
                })
            );

            store.touch_user("user_1", 200).await.unwrap();
            assert_eq!(last_seen(&store, "user_1").await, Some(Some(200)));
        }
    }

    #[actix_rt::test]
    async fn touch_users_writes_a_batch_in_one_transaction() {
        for store in test_stores().await.unwrap() {
            store.touch_user("user_b", 50).await.unwrap();
            let batch: Vec<(String, i64)> = ["user_a", "user_b", "user_c"]
                .iter()
                .map(|u| (u.to_string(), 300))
                .collect();

            store.touch_users(&batch).await.unwrap();

            for user in ["user_a", "user_b", "user_c"] {
                assert_eq!(last_seen(&store, user).await, Some(Some(300)), "{user}");
            }
        }
    }

    #[actix_rt::test]
    async fn profiles_are_upserted_and_deleted() {
        for store in test_stores().await.unwrap() {
            assert_eq!(store.profile("user_1").await.unwrap(), None);

            let mut p = profile("user_1");
            store.upsert_profile(&p, 100).await.unwrap();
            assert_eq!(store.profile("user_1").await.unwrap(), Some(p.clone()));
            // Webhook-created users have not been seen yet.
            assert_eq!(last_seen(&store, "user_1").await, Some(None));

            store.touch_user("user_1", 150).await.unwrap();
            p.email = None;
            p.first_name = Some("Augusta".to_owned());
            store.upsert_profile(&p, 200).await.unwrap();
            assert_eq!(store.profile("user_1").await.unwrap(), Some(p.clone()));
            assert_eq!(last_seen(&store, "user_1").await, Some(Some(150)));

            store.delete_user("user_1").await.unwrap();
            assert_eq!(store.profile("user_1").await.unwrap(), None);
            store.delete_user("user_1").await.unwrap();
        }
    }

    #[actix_rt::test]
    async fn revocations_are_listed_until_they_expire_and_then_purged() {
        for store in test_stores().await.unwrap() {
            store.revoke_session("sess_a", 100, 1_000).await.unwrap();
            store.revoke_session("sess_b", 100, 2_000).await.unwrap();
            // Revoking again never shortens the revocation.
            store.revoke_session("sess_b", 110, 1_500).await.unwrap();

            let mut live = store.revoked_sessions(999).await.unwrap();
            live.sort();
            assert_eq!(live, ["sess_a", "sess_b"]);
            assert_eq!(store.revoked_sessions(1_000).await.unwrap(), ["sess_b"]);

            assert_eq!(store.purge_revocations(1_999).await.unwrap(), 1);
            assert_eq!(store.purge_revocations(1_999).await.unwrap(), 0);
            assert_eq!(store.revoked_sessions(0).await.unwrap(), ["sess_b"]);
            assert_eq!(store.purge_revocations(2_000).await.unwrap(), 1);
            assert!(store.revoked_sessions(0).await.unwrap().is_empty());
        }
    }

    /// SHA-384 of `migrations/20251127000000_initial_schema.sql` as releases up to 0.2
    /// shipped it: the checksum sqlx recorded in every database they migrated.
    const RELEASED_INITIAL_CHECKSUM: &str = "90d06b790c84dd2ded66aba8b1f01f48af56e503a7219d34dc5efe8dc4af883e69919519766232c6331cf90d90d94eee";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn both_engines_start_with_the_released_initial_migration() {
        let migrations = [
            (
                "sqlite",
                include_str!("../../../migrations/sqlite/20251127000000_initial_schema.sql"),
            ),
            (
                "postgres",
                include_str!("../../../migrations/postgres/20251127000000_initial_schema.sql"),
            ),
        ];
        for (engine, sql) in migrations {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, sql.as_bytes());
            assert_eq!(hex(digest.as_ref()), RELEASED_INITIAL_CHECKSUM, "{engine}");
        }
    }

    #[actix_rt::test]
    async fn a_database_migrated_by_an_earlier_release_is_upgraded_with_its_rows() {
        for url in test_database_urls().await.unwrap() {
            let store = Store::connect(&url).await.unwrap();
            let engine = match store.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            };
            // The layout of earlier releases: one directory holding the initial migration.
            let old = std::env::temp_dir().join(format!(
                "keygate-old-migrations-{:016x}",
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&old).unwrap();
            let initial = "20251127000000_initial_schema.sql";
            std::fs::copy(
                format!(
                    "{}/migrations/{engine}/{initial}",
                    env!("CARGO_MANIFEST_DIR")
                ),
                old.join(initial),
            )
            .unwrap();
            let released = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
            assert_eq!(
                hex(&released.migrations[0].checksum),
                RELEASED_INITIAL_CHECKSUM
            );
            released.run(&store.pool).await.unwrap();
            std::fs::remove_dir_all(&old).unwrap();
            for sid in ["sess_old_1", "sess_old_2"] {
                sqlx::query(
                    "INSERT INTO revoked_sessions (session_id, revoked_at, expires_at) \
                     VALUES ($1, 100, 5000)",
                )
                .bind(sid)
                .execute(&store.pool)
                .await
                .unwrap();
            }

            store.migrate().await.unwrap();

            let old_rows = store.revocations_after(0, 10).await.unwrap();
            let sids: Vec<&str> = old_rows.iter().map(|r| r.session_id.as_str()).collect();
            assert_eq!(sids, ["sess_old_1", "sess_old_2"], "{engine}");
            assert!(
                old_rows[0].seq > 0 && old_rows[0].seq < old_rows[1].seq,
                "{engine}"
            );
            store.revoke_session("sess_new", 200, 5000).await.unwrap();
            let new_rows = store.revocations_after(old_rows[1].seq, 10).await.unwrap();
            assert_eq!(new_rows.len(), 1, "{engine}");
            assert_eq!(new_rows[0].session_id, "sess_new", "{engine}");
        }
    }

    #[actix_rt::test]
    async fn the_change_sequence_orders_every_write_and_skips_non_changes() {
        for store in test_stores().await.unwrap() {
            let backend = store.backend();
            assert!(store.revocations_after(0, 10).await.unwrap().is_empty());
            store.revoke_session("sess_a", 100, 1_000).await.unwrap();
            store.revoke_session("sess_b", 100, 2_000).await.unwrap();
            let all = store.revocations_after(0, 10).await.unwrap();
            assert_eq!(
                all.iter()
                    .map(|r| (r.session_id.as_str(), r.expires_at))
                    .collect::<Vec<_>>(),
                [("sess_a", 1_000), ("sess_b", 2_000)],
                "{backend:?}"
            );
            let last = all[1].seq;
            assert!(all[0].seq < last, "{backend:?}");
            assert!(store.revocations_after(last, 10).await.unwrap().is_empty());

            // An earlier or equal expiry changes nothing, so there is nothing to read.
            store.revoke_session("sess_a", 110, 900).await.unwrap();
            store.revoke_session("sess_a", 110, 1_000).await.unwrap();
            assert!(store.revocations_after(last, 10).await.unwrap().is_empty());
            // A later one moves the row to the end of the sequence.
            store.revoke_session("sess_a", 120, 3_000).await.unwrap();
            let moved = store.revocations_after(last, 10).await.unwrap();
            assert_eq!(moved.len(), 1, "{backend:?}");
            assert_eq!(moved[0].session_id, "sess_a");
            assert_eq!(moved[0].expires_at, 3_000);

            // The limit pages: oldest first.
            let page = store.revocations_after(0, 1).await.unwrap();
            assert_eq!(page[0].session_id, "sess_b", "{backend:?}");

            // Purging the newest row must not hand its value out again: a reader that
            // has passed it would never see the next revocation.
            let newest = moved[0].seq;
            assert_eq!(store.purge_revocations(3_000).await.unwrap(), 2);
            store.revoke_session("sess_c", 130, 4_000).await.unwrap();
            let after_purge = store.revocations_after(newest, 10).await.unwrap();
            assert_eq!(after_purge.len(), 1, "{backend:?}");
            assert_eq!(after_purge[0].session_id, "sess_c", "{backend:?}");
        }
    }

    #[actix_rt::test]
    async fn on_postgres_revocation_writers_wait_for_each_other() {
        for store in test_stores().await.unwrap() {
            if store.backend() != Backend::Postgres {
                continue;
            }
            // A writer that has taken the lock and its sequence value but not committed.
            let mut first = store.pool.begin().await.unwrap();
            store
                .revoke_session_on(&mut first, "sess_first", 100, 1_000)
                .await
                .unwrap();
            let second = tokio::spawn({
                let store = store.clone();
                async move { store.revoke_session("sess_second", 100, 1_000).await }
            });
            super::test_support::poll_until("the second writer to wait on the lock", async || {
                let (waiting,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .fetch_one(&store.pool)
                .await
                .unwrap();
                waiting == 1
            })
            .await;
            assert!(!second.is_finished());
            first.commit().await.unwrap();
            second.await.unwrap().unwrap();

            // So the value taken first also committed first.
            let rows = store.revocations_after(0, 10).await.unwrap();
            let sids: Vec<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
            assert_eq!(sids, ["sess_first", "sess_second"]);
        }
    }

    #[actix_rt::test]
    async fn webhook_events_are_recorded_once() {
        for store in test_stores().await.unwrap() {
            assert!(
                store
                    .record_webhook_event("msg_1", "user.created", 100)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .record_webhook_event("msg_1", "user.created", 101)
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .record_webhook_event("msg_2", "user.updated", 102)
                    .await
                    .unwrap()
            );

            assert_eq!(store.purge_webhook_events(101).await.unwrap(), 1);
            assert!(
                store
                    .record_webhook_event("msg_1", "user.created", 103)
                    .await
                    .unwrap()
            );
        }
    }

    #[actix_rt::test]
    async fn webhook_effects_apply_once_with_their_record() {
        for store in test_stores().await.unwrap() {
            let effect = WebhookEffect::UpsertProfile(profile("user_1"));
            assert!(
                store
                    .apply_webhook_event("msg_1", "user.created", &effect, 100)
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.profile("user_1").await.unwrap(),
                Some(profile("user_1"))
            );

            let delete = WebhookEffect::DeleteUser("user_1".to_owned());
            store.delete_user("user_1").await.unwrap();
            // A replay of msg_1 must not bring the deleted user back.
            assert!(
                !store
                    .apply_webhook_event("msg_1", "user.created", &effect, 101)
                    .await
                    .unwrap()
            );
            assert_eq!(store.profile("user_1").await.unwrap(), None);

            let revoke = WebhookEffect::RevokeSession {
                session_id: "sess_1".to_owned(),
                expires_at: 500,
            };
            assert!(
                store
                    .apply_webhook_event("msg_2", "session.revoked", &revoke, 102)
                    .await
                    .unwrap()
            );
            assert_eq!(store.revoked_sessions(102).await.unwrap(), ["sess_1"]);
            assert!(
                store
                    .apply_webhook_event("msg_3", "user.deleted", &delete, 103)
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .apply_webhook_event("msg_4", "email.created", &WebhookEffect::Nothing, 104)
                    .await
                    .unwrap()
            );
        }
    }

    #[actix_rt::test]
    async fn a_failed_effect_leaves_no_idempotency_record() {
        for store in test_stores().await.unwrap() {
            // Make the effect fail after the record was inserted, inside the transaction.
            sqlx::query("DROP TABLE users")
                .execute(&store.pool)
                .await
                .unwrap();
            let effect = WebhookEffect::UpsertProfile(profile("user_1"));
            let failed = store
                .apply_webhook_event("msg_1", "user.created", &effect, 100)
                .await;
            assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
            // The record was rolled back, so the retry is not mistaken for a replay.
            assert!(
                store
                    .record_webhook_event("msg_1", "user.created", 101)
                    .await
                    .unwrap()
            );
        }
    }

    #[actix_rt::test]
    async fn an_unreachable_database_is_an_error_without_the_password() {
        let err = Store::connect("postgres://keygate:hunter2secret@127.0.0.1:1/none")
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
        assert!(
            err.to_string()
                .starts_with("DATABASE_URL: cannot open postgres://keygate:***@127.0.0.1:1/none: "),
            "{err}"
        );
    }

    #[test]
    fn sqlite_paths_as_sqlx_reads_them() {
        assert_eq!(
            sqlite_path("sqlite://keygate.db?mode=rwc"),
            Some("keygate.db")
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/k.db"), Some("/var/lib/k.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u:p@h/db"), None);
        assert_eq!(
            describe_target("sqlite:///nonexistent-dir/x.db?mode=rwc"),
            "the SQLite file /nonexistent-dir/x.db (the directory /nonexistent-dir does not exist)"
        );
        assert_eq!(
            describe_target("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
