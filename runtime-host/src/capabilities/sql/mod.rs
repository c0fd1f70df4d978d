//! `sandflow:host/sql`: one statement against a database the operator allows.
//!
//! Configure (operator): an allow-list of named databases
//! (`--sql-database NAME=URL[,read-write][,tenant=ID…]`): SQLite,
//! PostgreSQL, MySQL or MariaDB, read-only unless marked `read-write`,
//! open to every tenant of the host or only to the tenants named. Prepare
//! (per run): nothing; the run's tenant is in its capabilities. Host:
//! `query(database, statement)` → a table of JSON rows (column name →
//! value).
//!
//! What a flow controls, and what it cannot:
//! - **Which database**: the flow's `database_url` names an allowed
//!   database, by its name (or by the exact URL the operator listed). A
//!   URL that is not on the list is `denied`: a flow never opens a
//!   connection to an address of its choosing.
//! - **Writes**: a read-only database is read-only in the database
//!   itself, not by reading the SQL: PostgreSQL runs the statement in a
//!   `BEGIN READ ONLY` transaction on a session whose
//!   `default_transaction_read_only` is on, MySQL/MariaDB in `START
//!   TRANSACTION READ ONLY` on a session set `READ ONLY`, SQLite on a
//!   connection opened read-only with `PRAGMA query_only`; read-only
//!   transactions are rolled back.
//! - **One statement per call**: PostgreSQL and MySQL prepare the text
//!   first, which they refuse for several statements; SQLite's text is
//!   checked by [`statements::several`].
//! - **The host's files**: SQLite runs in the host's process (rusqlite,
//!   on the run's thread), so a statement that opens another file
//!   (`ATTACH`, `VACUUM INTO`) is refused on SQLite databases
//!   ([`statements::opens_files`], and no database can be attached).
//! - **Nothing survives a call**: every call opens its own connection and
//!   closes it, so no session setting, lock, attached database or
//!   temporary table carries over into the next call (or another run).
//! - **Bounds**: at most [`SqlConfig::max_rows`] rows and
//!   [`SqlConfig::max_bytes`] bytes of values (more is an error that says
//!   to add a `LIMIT`), and the run's remaining time, enforced by the
//!   database too (`statement_timeout`, `max_statement_time` /
//!   `max_execution_time`, SQLite's interrupt). A server's message over
//!   the byte bound ends the connection at its header, before the host
//!   reads it ([`guard`]). SQLite, which runs in the
//!   host's process, is bound further: schema PRAGMAs only, a cap on its
//!   heap, no value longer than `max_bytes` (`sqlite.rs`).
//!
//! The database user in the URL is the last line: give it only the rights
//! the flows should have (no superuser, no `FILE` privilege).

mod guard;
mod rows;
mod servers;
mod sqlite;
pub mod statements;

use crate::bindings::node::sandflow::host::sql::Host;
use crate::bindings::node::sandflow::host::types::{CapabilityError, Table};
use crate::sandbox::RunState;
use std::str::FromStr;
use std::time::Duration;

/// `future`, or `None` once `time` has passed.
async fn timeout<F: Future>(time: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(time, future).await.ok()
}

/// The operator's allow-list of databases and the bounds of one call.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// Databases flows may query, by name.
    pub databases: Vec<SqlDatabase>,
    /// Most rows one call returns.
    pub max_rows: usize,
    /// Most bytes of values one call returns.
    pub max_bytes: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self { databases: Vec::new(), max_rows: 1_000, max_bytes: 8 << 20 }
    }
}

/// Which database server a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite:PATH` or `sqlite://PATH`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `mysql://…` or `mariadb://…`.
    MySql,
}

/// One allowed database.
#[derive(Clone)]
pub struct SqlDatabase {
    /// The name flows use.
    pub name: String,
    /// Where it is (may hold a password).
    pub url: String,
    /// The server kind.
    pub dialect: Dialect,
    /// Whether statements may write.
    pub read_write: bool,
    /// Tenants that may use it; empty means every tenant of the host.
    pub tenants: Vec<String>,
}

impl std::fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .field("read_write", &self.read_write)
            .field("tenants", &self.tenants)
            .finish()
    }
}

impl FromStr for SqlDatabase {
    type Err = String;

    /// `NAME=URL[,read-write][,tenant=ID]…`: options are read from the end,
    /// so a URL may itself hold commas.
    fn from_str(spec: &str) -> Result<Self, String> {
        let usage = || format!("`{}` is not `NAME=URL[,read-write][,tenant=ID]`", redact(spec));
        let (name, mut rest) = spec.split_once('=').ok_or_else(usage)?;
        let name = name.trim();
        if name.is_empty() || name.contains("://") || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(usage());
        }
        let (mut read_write, mut tenants) = (false, Vec::new());
        while let Some((head, option)) = rest.rsplit_once(',') {
            let option = option.trim();
            if option == "read-write" {
                read_write = true;
            } else if let Some(tenant) = option.strip_prefix("tenant=").filter(|t| !t.is_empty()) {
                tenants.insert(0, tenant.to_owned());
            } else {
                break;
            }
            rest = head;
        }
        let url = rest.trim().to_owned();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Dialect::MySql
        } else {
            return Err(format!("database `{name}`: `{}` is not a sqlite:, postgres:// or mysql:// URL", redact(&url)));
        };
        Ok(Self { name: name.to_owned(), url, dialect, read_write, tenants })
    }
}

impl SqlConfig {
    /// The database a flow's `database_url` value names for `tenant`.
    pub fn resolve(&self, value: &str, tenant: &str) -> Result<&SqlDatabase, CapabilityError> {
        let value = value.trim();
        let visible =
            || self.databases.iter().filter(|d| d.tenants.is_empty() || d.tenants.iter().any(|t| t == tenant));
        if value.is_empty() {
            let names: Vec<&str> = visible().map(|d| d.name.as_str()).collect();
            return Err(CapabilityError::Invalid(format!(
                "the SQL node names no database: set its Database URL to the name of an allowed database ({})",
                if names.is_empty() { "none is allowed for this tenant".to_owned() } else { names.join(", ") }
            )));
        }
        if let Some(found) = visible().find(|d| d.name == value).or_else(|| visible().find(|d| d.url == value)) {
            return Ok(found);
        }
        if value.contains("://") || value.starts_with("sqlite:") {
            return Err(CapabilityError::Denied(format!(
                "the flow names its database by the URL `{}`, which this host does not allow: a flow cannot \
                 connect where it chooses; the operator must allow the database by name \
                 (`--sql-database NAME=URL`) and the flow's Database URL must be that NAME",
                redact(value)
            )));
        }
        Err(CapabilityError::Denied(format!(
            "no database named `{}` is allowed on this host for this tenant; the operator allows databases with \
             `--sql-database NAME=URL`",
            value.chars().take(100).collect::<String>()
        )))
    }
}

/// A URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

impl Host for RunState {
    fn query(&mut self, database: String, statement: String) -> Result<Table, CapabilityError> {
        let config = &self.caps.config.sql;
        if config.databases.is_empty() {
            return Err(CapabilityError::NotConfigured(
                "the `sql` capability is not configured on this host; the operator allows databases with \
                 --sql-database NAME=URL"
                    .into(),
            ));
        }
        let db = config.resolve(&database, &self.caps.tenant)?.clone();
        let span = tracing::info_span!(
            "runtime_host.sql",
            database = %db.name,
            read_write = db.read_write,
            rows = tracing::field::Empty,
        );
        let _entered = span.enter();
        if statement.trim().is_empty() {
            return Err(CapabilityError::Invalid("the SQL statement is empty".into()));
        }
        let remaining =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        let bounds = rows::Bounds { max_rows: config.max_rows, max_bytes: config.max_bytes, time: remaining };
        // A trailing `;` ends the one statement; it is not a second one.
        let mut sql = statement.trim_end();
        while let Some(rest) = sql.strip_suffix(';') {
            sql = rest.trim_end();
        }
        if db.dialect != Dialect::Sqlite {
            self.caps.calling_out();
        }
        let outcome = match db.dialect {
            Dialect::Sqlite => {
                // SQLite works on this thread: the queue goes on meanwhile.
                crate::lanes::release();
                Some(sqlite::query(&db, sql, &bounds))
            }
            Dialect::Postgres => super::io::block_on(timeout(remaining, servers::postgres(&db, sql, &bounds))),
            Dialect::MySql => super::io::block_on(timeout(remaining, servers::mysql(&db, sql, &bounds))),
        };
        let Some(result) = outcome else {
            return Err(CapabilityError::Denied(format!(
                "the statement on `{}` did not finish before the run's deadline",
                db.name
            )));
        };
        let rows = result.map_err(|e| e.into_capability(&db.name))?;
        span.record("rows", rows.len());
        Ok(Table { rows: rows.into_iter().map(|row| serde_json::Value::Object(row).to_string()).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let db: SqlDatabase = "pricing=sqlite://data/p.db".parse().expect("spec");
        assert_eq!((db.name.as_str(), db.url.as_str(), db.read_write), ("pricing", "sqlite://data/p.db", false));
        let db: SqlDatabase = "crm=postgres://u:p@h/db?options=a,b,read-write,tenant=acme".parse().expect("spec");
        assert_eq!(db.url, "postgres://u:p@h/db?options=a,b");
        assert!(db.read_write);
        assert_eq!(db.tenants, ["acme"]);
        assert!("=sqlite:x".parse::<SqlDatabase>().is_err());
        assert!("x=http://h".parse::<SqlDatabase>().is_err());
        assert!(!format!("{db:?}").contains(":p@"), "passwords stay out of logs");
    }

    #[test]
    fn resolving() {
        let config = SqlConfig {
            databases: vec![
                "pricing=sqlite://p.db".parse().expect("spec"),
                "crm=postgres://h/crm,tenant=acme".parse().expect("spec"),
            ],
            ..SqlConfig::default()
        };
        assert_eq!(config.resolve("pricing", "t").expect("by name").name, "pricing");
        assert_eq!(config.resolve("sqlite://p.db", "t").expect("by listed URL").name, "pricing");
        assert!(matches!(config.resolve("crm", "other"), Err(CapabilityError::Denied(_))));
        assert_eq!(config.resolve("crm", "acme").expect("own tenant").name, "crm");
        assert!(
            matches!(config.resolve("postgres://evil/db", "t"), Err(CapabilityError::Denied(m)) if m.contains("by name"))
        );
        assert!(matches!(config.resolve("", "t"), Err(CapabilityError::Invalid(m)) if m.contains("pricing")));
    }

    #[test]
    fn redacting() {
        assert_eq!(redact("postgres://me:secret@h:5432/db"), "postgres://me:***@h:5432/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
