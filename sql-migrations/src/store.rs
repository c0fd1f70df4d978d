//! Opening a store of our own (the memory store, the document index) from a
//! URL: SQLite (a file, created with its directory, or in memory) or
//! PostgreSQL, through sqlx's `Any` driver. The caller migrates it and
//! turns the errors into its own.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;

/// Which database is behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A store URL, understood.
#[derive(Debug, Clone)]
pub struct StoreUrl {
    /// The database.
    pub dialect: Dialect,
    /// An in-memory SQLite database (one connection, kept open).
    pub in_memory: bool,
    /// What to connect to (a SQLite file gets `mode=rwc`).
    connect: String,
    /// The URL with any password hidden, for logs and errors.
    pub shown: String,
}

/// Why a store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The URL names neither SQLite nor PostgreSQL (the URL, password hidden).
    UnsupportedUrl(String),
    /// The directory of the SQLite file could not be created.
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed.
    Database(sqlx::Error),
}

impl StoreUrl {
    /// Reads `url`: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    pub fn parse(url: &str) -> Result<Self, OpenError> {
        let shown = redact_url(url);
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(OpenError::UnsupportedUrl(shown));
        };
        let in_memory = dialect == Dialect::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let connect = if dialect == Dialect::Sqlite && !in_memory && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        Ok(Self { dialect, in_memory, connect, shown })
    }

    /// The file of a SQLite store on disk (`None` for PostgreSQL and for
    /// an in-memory database), for a connection opened outside sqlx.
    pub fn sqlite_file(&self) -> Option<&str> {
        (self.dialect == Dialect::Sqlite && !self.in_memory).then(|| sqlite_path(&self.connect))
    }

    /// Connects a pool (creating a SQLite file's directory first); each
    /// SQLite connection runs `sqlite_pragmas` when it opens.
    pub async fn connect(&self, sqlite_pragmas: &'static str) -> Result<AnyPool, OpenError> {
        sqlx::any::install_default_drivers();
        if self.dialect == Dialect::Sqlite && !self.in_memory {
            create_parent_dir(&self.connect)?;
        }
        let options = AnyConnectOptions::from_str(&self.connect).map_err(OpenError::Database)?;
        let mut pool = AnyPoolOptions::new().max_connections(match self.dialect {
            // An in-memory database lives as long as its one connection.
            Dialect::Sqlite if self.in_memory => 1,
            // One writer at a time anyway; a few readers beside it.
            Dialect::Sqlite => 4,
            Dialect::Postgres => 10,
        });
        if self.in_memory {
            pool = pool.min_connections(1).idle_timeout(None).max_lifetime(None);
        }
        let dialect = self.dialect;
        pool.after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    conn.execute(sqlite_pragmas).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(OpenError::Database)
    }
}

/// The path part of a SQLite URL.
fn sqlite_path(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or_default()
}

fn create_parent_dir(url: &str) -> Result<(), OpenError> {
    let path = sqlite_path(url);
    match Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|source| OpenError::Directory { path: dir.display().to_string(), source }),
        None => Ok(()),
    }
}

/// `url` with any password replaced, safe to log or show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_hidden() {
        let file = StoreUrl::parse("sqlite:///tmp/x/memory.db").unwrap();
        assert_eq!(
            (file.dialect, file.in_memory, file.connect.as_str()),
            (Dialect::Sqlite, false, "sqlite:///tmp/x/memory.db?mode=rwc")
        );
        assert_eq!(file.sqlite_file(), Some("/tmp/x/memory.db"));
        assert!(StoreUrl::parse("sqlite::memory:").unwrap().in_memory);
        assert_eq!(StoreUrl::parse("sqlite::memory:").unwrap().sqlite_file(), None);
        let pg = StoreUrl::parse("postgres://app:secret@db/x").unwrap();
        assert_eq!((pg.dialect, pg.shown.as_str()), (Dialect::Postgres, "postgres://app:***@db/x"));
        assert_eq!(pg.sqlite_file(), None);
        assert!(
            matches!(StoreUrl::parse("mysql://app:secret@db/x"), Err(OpenError::UnsupportedUrl(u)) if u == "mysql://app:***@db/x")
        );
    }
}
