//! Fresh, empty databases for tests: a new SQLite file under the temp directory and,
//! when `TEST_DATABASE_URL` names a PostgreSQL server, a newly created database
//! `kg_<random>` on it, so parallel tests never share rows. Not migrated.
//!
//! Shared by the store's unit tests and the integration tests (this crate is a
//! dev-dependency of both);
//! never part of the library. The databases are left behind for inspection; they are
//! small.

use sqlx::{AnyConnection, Connection};

/// URLs of fresh databases: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set.
pub async fn fresh_database_urls() -> Result<Vec<String>, sqlx::Error> {
    let mut urls = vec![fresh_sqlite_url()];
    if let Some(admin_url) = postgres_admin_url() {
        urls.push(fresh_postgres_database(&admin_url).await?);
    }
    Ok(urls)
}

/// A SQLite file that does not exist yet (`mode=rwc` creates it).
pub fn fresh_sqlite_url() -> String {
    format!(
        "sqlite://{}?mode=rwc",
        std::env::temp_dir()
            .join(format!("keygate-test-{:016x}.db", rand::random::<u64>()))
            .display()
    )
}

/// The PostgreSQL server for tests, if configured.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

/// Creates `kg_<random>` on the server of `admin_url` and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let name = format!("kg_{:016x}", rand::random::<u64>());
    let mut admin = AnyConnection::connect(admin_url).await?;
    // CREATE DATABASE cannot run in a transaction; an unparameterised statement
    // goes through the simple query protocol, which does not open one.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(with_database_name(admin_url, &name))
}

/// `url` with its path (the database name) replaced by `name`, query kept.
pub fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
