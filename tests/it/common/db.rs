//! The databases persistence tests run on: a fresh SQLite file always, and a
//! fresh PostgreSQL database when `TEST_DATABASE_URL` is set.

use sqlx::{AnyConnection, Connection};

/// Fresh, empty database URLs: SQLite, and PostgreSQL when `TEST_DATABASE_URL` is set.
pub async fn database_urls() -> Vec<String> {
    super::databases::fresh_database_urls().await.unwrap()
}

/// Whether `url` is a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// `postgres` or `sqlite`, for assertion messages.
pub fn engine(url: &str) -> &'static str {
    if is_postgres(url) {
        "postgres"
    } else {
        "sqlite"
    }
}

pub use super::databases::postgres_admin_url;

/// A direct connection, separate from any app's pool.
pub async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.unwrap()
}

/// `SELECT COUNT(*) FROM table`.
pub async fn count_rows(url: &str, table: &str) -> i64 {
    let mut conn = connect(url).await;
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("counting the rows of {table} in {url}: {e}"));
    conn.close().await.unwrap();
    n
}

/// The rows of every keygate table: `(users, revoked_sessions, webhook_events)`.
pub async fn all_rows(url: &str) -> (i64, i64, i64) {
    (
        count_rows(url, "users").await,
        count_rows(url, "revoked_sessions").await,
        count_rows(url, "webhook_events").await,
    )
}

/// A user's `last_seen_at`: `None` without a row.
pub async fn last_seen(url: &str, user_id: &str) -> Option<Option<i64>> {
    let mut conn = connect(url).await;
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT last_seen_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    row.map(|(t,)| t)
}

/// The database name of a PostgreSQL URL.
fn database_name(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// Drops a PostgreSQL database, ending the sessions still connected to it.
pub async fn drop_postgres_database(url: &str) {
    let admin_url = postgres_admin_url().expect("TEST_DATABASE_URL");
    let name = database_name(url);
    assert!(
        name.starts_with("kg_"),
        "refusing to drop {name}: not a test database"
    );
    let mut admin = connect(&admin_url).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
}

/// Removes a test database: drops a PostgreSQL one, deletes a SQLite file and its
/// WAL companions. Apps using it should be stopped first.
pub async fn remove_database(url: &str) {
    if is_postgres(url) {
        drop_postgres_database(url).await;
    } else if let Some(path) = sqlite_path(url) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}

/// The file path of a `sqlite://PATH?…` URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// A user's profile columns, as the webhooks write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `id`.
    pub user_id: String,
    /// `email`.
    pub email: Option<String>,
    /// `first_name`.
    pub first_name: Option<String>,
    /// `last_name`.
    pub last_name: Option<String>,
    /// `image_url`.
    pub image_url: Option<String>,
}

/// The profile of `user_id`'s row, `None` without a row.
pub async fn profile(url: &str, user_id: &str) -> Option<Profile> {
    let mut conn = connect(url).await;
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
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    row.map(
        |(user_id, email, first_name, last_name, image_url)| Profile {
            user_id,
            email,
            first_name,
            last_name,
            image_url,
        },
    )
}

/// Whether `revoked_sessions` has a row for `session_id`.
pub async fn revoked(url: &str, session_id: &str) -> bool {
    let mut conn = connect(url).await;
    let row: Option<(String,)> =
        sqlx::query_as("SELECT session_id FROM revoked_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    row.is_some()
}
