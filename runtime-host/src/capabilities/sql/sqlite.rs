//! SQLite: one statement on a connection of its own, in this process
//! (rusqlite), on the run's own thread.
//!
//! SQLite builds every value in the host's memory, so the connection is
//! bounded before the statement is read:
//! - no string, blob or row is longer than the call's byte bound
//!   (`SQLITE_LIMIT_LENGTH`): `SELECT randomblob(999999999)` fails with
//!   "string or blob too big" instead of allocating a gigabyte (a
//!   statement may still hold several such values at once, one per
//!   result column or function argument);
//! - no database can be attached (`SQLITE_LIMIT_ATTACHED` = 0), besides
//!   the text check of [`statements::opens_files`];
//! - a progress handler interrupts the statement at the run's deadline,
//!   and a locked database is waited for until then at most.

use super::rows::{Bounds, Gathered, Rows, SqlError, number};
use super::{SqlDatabase, statements};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde_json::Value as Json;
use std::time::Instant;

/// How many virtual machine steps SQLite takes between deadline checks.
const STEPS_PER_CHECK: i32 = 1_000;

/// Runs `sql` (no trailing `;`) on the SQLite database `db`.
pub(super) fn query(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    if statements::several(sql) {
        return Err(SqlError::Invalid("the text holds more than one statement; send one statement per call".into()));
    }
    if statements::opens_files(sql) {
        return Err(SqlError::Invalid(
            "ATTACH and VACUUM are not allowed on SQLite databases: they open other files on the host".into(),
        ));
    }
    let deadline = Instant::now() + bounds.time;
    let conn = open(db, bounds)?;
    let fail = |error| refused(error, bounds);
    conn.progress_handler(STEPS_PER_CHECK, Some(move || Instant::now() >= deadline));
    let mut statement = conn.prepare(sql).map_err(fail)?;
    let columns: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = statement.query([]).map_err(fail)?;
    let mut gathered = Gathered::new(bounds);
    while let Some(row) = rows.next().map_err(fail)? {
        gathered.push(columns.iter().enumerate().map(|(i, column)| {
            let value = row.get_ref(i).map_err(fail)?;
            Ok::<_, SqlError>((column.clone(), json(value)))
        }))?;
    }
    Ok(gathered.into_rows())
}

/// Opens `db` as the operator listed it, read-only unless marked
/// `read-write`, never creating it, bounded as the module says.
fn open(db: &SqlDatabase, bounds: &Bounds) -> Result<Connection, SqlError> {
    let access = if db.read_write { OpenFlags::SQLITE_OPEN_READ_WRITE } else { OpenFlags::SQLITE_OPEN_READ_ONLY };
    let flags = access | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_uri(&db.url), flags).map_err(SqlError::connect)?;
    conn.busy_timeout(bounds.time).map_err(SqlError::connect)?;
    let max_length = i32::try_from(bounds.max_bytes).unwrap_or(i32::MAX).max(1);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, max_length);
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    if !db.read_write {
        conn.pragma_update(None, "query_only", true).map_err(SqlError::connect)?;
    }
    Ok(conn)
}

/// The operator's `sqlite:PATH` / `sqlite://PATH[?OPTIONS]` as SQLite's
/// own `file:` URI, whose options (`mode`, `immutable`, …) SQLite reads; a
/// `mode` cannot widen the access the flags above give.
fn file_uri(url: &str) -> String {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.starts_with(":memory:") { path.to_owned() } else { format!("file:{path}") }
}

/// A statement's failure: the database's own words, or what to change
/// when a value went past the byte bound.
fn refused(error: rusqlite::Error, bounds: &Bounds) -> SqlError {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == ErrorCode::TooBig => SqlError::Invalid(format!(
            "a value of the statement is larger than {} bytes; select smaller values",
            bounds.max_bytes
        )),
        rusqlite::Error::SqliteFailure(failure, message) => SqlError::Refused {
            code: failure.extended_code.to_string(),
            message: message.unwrap_or_else(|| failure.to_string()),
        },
        other => SqlError::Failed(other.to_string()),
    }
}

/// A value by its storage class; text and blobs as (lossy) text.
fn json(value: ValueRef<'_>) -> Json {
    match value {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(n) => Json::from(n),
        ValueRef::Real(n) => number(n),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Json::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::file_uri;

    #[test]
    fn urls_become_sqlite_uris() {
        assert_eq!(file_uri("sqlite://data/p.db"), "file:data/p.db");
        assert_eq!(file_uri("sqlite:///srv/p.db?immutable=1"), "file:/srv/p.db?immutable=1");
        assert_eq!(file_uri("sqlite:p.db"), "file:p.db");
        assert_eq!(file_uri("sqlite::memory:"), ":memory:");
    }
}
