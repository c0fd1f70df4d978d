//! Storage: one [`Db`] over SQLite (the embedded default) or PostgreSQL
//! (scale-out), chosen by the URL.
//!
//! Queries are runtime-checked (`sqlx::query`) through sqlx's `Any` driver,
//! so one query text serves both dialects and no database is needed at build
//! time. The SQL is written in the common subset: `$1`-style parameters
//! (SQLite accepts them too), `ON CONFLICT … DO NOTHING`, `RETURNING`,
//! integer timestamps (milliseconds since the Unix epoch, UTC) and 0/1 flags,
//! because the `Any` driver carries neither SQLite booleans nor PostgreSQL
//! timestamps. Sums are cast to `BIGINT` (PostgreSQL's `SUM(bigint)` is
//! `NUMERIC`, which `Any` cannot decode).
//!
//! Migrations live in `migrations/sqlite/` and `migrations/postgres/`, one
//! file per step with the same number in both, append-only; they run when
//! the [`Db`] is opened.

use crate::migrations;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// SQL for the sum of integer column `$column` that never overflows: as a
/// `DOUBLE PRECISION`, exact for totals below 2^53; read it with
/// [`sum_of`], which saturates at `i64::MAX`. SQLite's integer `SUM`
/// raises on overflow, and so does PostgreSQL's cast of its `NUMERIC` sum
/// to `BIGINT`, so one corrupt usage record would otherwise fail a
/// month's totals for every tenant (and hosts seeding their quotas).
#[macro_export]
macro_rules! sql_sum {
    ($column:literal) => {
        concat!("COALESCE(SUM(CAST(", $column, " AS DOUBLE PRECISION)), 0.0)")
    };
}

/// Reads a [`sql_sum!`] column as an `i64`, saturating.
pub fn sum_of(row: &sqlx::any::AnyRow, column: &str) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    // `as` saturates at the bounds (a NaN, which SUM never gives, is 0).
    Ok(row.try_get::<f64, _>(column)? as i64)
}

/// Which database is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one file under the data directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The dialect a connection URL names, if it is one we support.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A connection pool over SQLite or PostgreSQL, migrated.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Opens (creating a SQLite file if needed) and migrates the database
    /// at `url`.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or_else(|| OpenError::UnsupportedUrl(redact_url(url)))?;
        let url = match dialect {
            Dialect::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(OpenError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                // One writer at a time anyway; a few readers beside it.
                Dialect::Sqlite => 4,
                Dialect::Postgres => 10,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL sync
                        // is durable across process crashes (fsync at
                        // checkpoints); foreign keys are off by default; a
                        // 32 MiB page cache per connection (instead of 2 MiB)
                        // keeps the ledger's indexes out of the OS's page
                        // cache on every insert.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA cache_size = -32768;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(OpenError::Connect)?;
        match dialect {
            Dialect::Sqlite => sandflow_sql_migrations::migrator(migrations::SQLITE).await?.run(&pool).await?,
            Dialect::Postgres => sandflow_sql_migrations::migrator(migrations::POSTGRES).await?.run(&pool).await?,
        }
        Ok(Self { pool, dialect })
    }

    /// The SQLite database file `control-plane.db` in `data_dir`, created
    /// with the directory if missing.
    pub async fn open_in_data_dir(data_dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| OpenError::DataDir { path: data_dir.display().to_string(), source })?;
        let file = data_dir.join("control-plane.db");
        Self::open(&format!("sqlite://{}", file.display())).await
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`), waiting up to `busy_timeout` for it: a
    /// deferred transaction that reads and then writes fails at once with
    /// `SQLITE_BUSY`, whatever `busy_timeout` says, when another connection
    /// (a background job) committed in between, which answered a request
    /// with a 500.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A new random id (UUID v4, text).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `url` with any password replaced, safe to log or show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_follows_the_scheme() {
        assert_eq!(Dialect::from_url("sqlite://x.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::from_url("postgres://u@h/d"), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_url("postgresql://u@h/d"), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_url("mysql://u@h/d"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/d"), "postgres://u:***@h:5432/d");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}

#[cfg(test)]
mod sqlite_tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_connections_use_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_in_data_dir(dir.path()).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap();
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut *conn).await.unwrap();
        assert_eq!((journal.as_str(), sync, fk, busy, cache), ("wal", 1, 1, 10_000, -32_768));
    }
}
