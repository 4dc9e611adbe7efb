//! PostgreSQL's push path for revocations: the writing transaction sends
//! `NOTIFY keygate_revocations` (see
//! [`Store::revoke_session`](super::Store::revoke_session)), and each replica keeps
//! one [`RevocationListener`] connection that wakes its poll.
//!
//! A notification carries nothing but "look now": the rows themselves are always read
//! by the incremental poll, so a lost notification (the connection dropped, or the
//! replica was reconnecting) only delays a revocation until the next poll.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::{ACQUIRE_TIMEOUT, StoreError};

macro_rules! channel {
    () => {
        "keygate_revocations"
    };
}

/// The notification channel revocation writers notify and replicas listen on.
pub const REVOCATION_CHANNEL: &str = channel!();

/// Sent in the writing transaction; PostgreSQL delivers it at commit.
pub(super) const NOTIFY_SQL: &str = concat!("NOTIFY ", channel!());

/// Longest wait for a listening connection to open and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` of every listening connection, so operators (and tests)
/// can find them in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "keygate-revocations";

/// One connection subscribed to [`REVOCATION_CHANNEL`]. It never reconnects by itself:
/// once [`RevocationListener::next`] or [`RevocationListener::ping`] fails it is done,
/// and the caller opens a new one (with its own backoff), so the caller always knows
/// whether it is listening.
pub struct RevocationListener {
    listener: PgListener,
}

impl std::fmt::Debug for RevocationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationListener").finish_non_exhaustive()
    }
}

impl RevocationListener {
    /// Opens a connection and subscribes it; returns once `LISTEN` has been acknowledged,
    /// so every commit after this call wakes [`RevocationListener::next`].
    pub(super) async fn connect(options: &PgConnectOptions) -> Result<Self, StoreError> {
        // The pool bounds opening the connection, but not the LISTEN on a connection
        // whose network went away right after it opened.
        tokio::time::timeout(CONNECT_TIMEOUT, Self::subscribe(options))
            .await
            .map_err(|_| StoreError::ListenerLost)?
    }

    async fn subscribe(options: &PgConnectOptions) -> Result<Self, StoreError> {
        // A pool of its own, of one connection, because PgListener is built on one;
        // it dies with the listener.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        // A lost connection must surface as an error here rather than be replaced
        // silently: notifications are lost while it is down, and the caller polls
        // after reconnecting to make up for them.
        listener.eager_reconnect(false);
        listener.listen(REVOCATION_CHANNEL).await?;
        Ok(RevocationListener { listener })
    }

    /// Waits for the next notification; [`StoreError::ListenerLost`] (or the
    /// connection's error) when the connection is gone.
    ///
    /// Cancel-safe: sqlx reads a message into its buffer before taking it, so dropping
    /// this future mid-wait loses nothing.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        match self.listener.try_recv().await? {
            Some(_) => Ok(()),
            None => Err(StoreError::ListenerLost),
        }
    }

    /// A round trip on the listening connection, to find one that died without the
    /// server closing it (a network partition): such a connection would wait forever.
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut self.listener).await?;
        Ok(())
    }
}
