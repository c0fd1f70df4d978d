//! SQLite: one statement on a connection of its own, in this process
//! (rusqlite), on the run's own thread.
//!
//! SQLite runs inside the host, so a statement could reach past its call:
//! build values in the host's memory, or change settings that are the
//! whole process's. Before the statement is read, the connection is bound:
//! - **PRAGMAs**: only those that describe the schema ([`SCHEMA_PRAGMAS`])
//!   pass the connection's authorizer, which also sees the `pragma_…`
//!   table functions. Others change the process (`hard_heap_limit`,
//!   `soft_heap_limit`, `temp_store_directory`) or the database file.
//! - **Code that runs later**: on read-write databases too, no trigger,
//!   view or virtual table can be created (they would run in the
//!   operator's own applications, or parse index structures a flow
//!   wrote), and the connection is defensive (`SQLITE_DBCONFIG_DEFENSIVE`:
//!   no writing of the schema or of virtual tables' shadow tables) and
//!   trusts no function named in the schema (`trusted_schema = OFF`).
//! - **Memory**: SQLite's heap, process-wide, is capped at [`HEAP_LIMIT`]
//!   from the first call on (`PRAGMA hard_heap_limit`, set by the host
//!   before any authorizer is in place), so no statement makes the host
//!   allocate more than that, whatever it builds (`json_group_array` of
//!   large values, thousands of result columns). A statement that reaches
//!   it fails with `SQLITE_NOMEM`, as may SQLite work elsewhere in the
//!   process (the chat history, an embedded control plane) for as long as
//!   it is at the cap: the trade for a host that is never driven out of
//!   memory. No single string, blob or row may be longer than the call's
//!   byte bound either (`SQLITE_LIMIT_LENGTH`), read or built:
//!   `SELECT randomblob(999999999)` fails at once.
//! - **Files**: no database can be attached (`SQLITE_LIMIT_ATTACHED` = 0,
//!   and the authorizer), besides the text check of
//!   [`statements::opens_files`]. Sorts and temporary tables stay in
//!   memory (`temp_store = MEMORY`), under the heap cap: in files they
//!   would fill the disk without bound (`ORDER BY` over rows of
//!   `randomblob`, say).
//! - **Time**: the statement stops at the run's deadline: a progress
//!   handler checks the clock every thousand steps, and a timer interrupts
//!   the connection for steps that call no handler (`count(*)`); a locked
//!   database is waited for until then at most.

use super::rows::{Bounds, Gathered, Rows, SqlError, number};
use super::{SqlDatabase, statements};
use crate::capabilities::io;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde_json::Value as Json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// PRAGMAs a statement may use: they read the schema and change nothing.
const SCHEMA_PRAGMAS: &[&str] =
    &["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"];

/// Most bytes SQLite may hold, over the whole process, once a flow has
/// queried a SQLite database.
const HEAP_LIMIT: i64 = 512 << 20;

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
    conn.progress_handler(STEPS_PER_CHECK, Some(move || Instant::now() >= deadline));
    let interrupt = conn.get_interrupt_handle();
    let _interrupt = io::after(bounds.time, move || interrupt.interrupt());
    let fail = |error| refused(error, bounds);
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
/// `read-write`, never creating it, bound as the module says.
fn open(db: &SqlDatabase, bounds: &Bounds) -> Result<Connection, SqlError> {
    let access = if db.read_write { OpenFlags::SQLITE_OPEN_READ_WRITE } else { OpenFlags::SQLITE_OPEN_READ_ONLY };
    let flags = access | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_uri(&db.url), flags).map_err(SqlError::connect)?;
    // Set until it holds (the PRAGMA only ever lowers the cap).
    static HEAP_CAPPED: AtomicBool = AtomicBool::new(false);
    if !HEAP_CAPPED.load(Ordering::Acquire) {
        conn.pragma_update(None, "hard_heap_limit", HEAP_LIMIT).map_err(SqlError::connect)?;
        HEAP_CAPPED.store(true, Ordering::Release);
    }
    conn.busy_timeout(bounds.time).map_err(SqlError::connect)?;
    let max_length = i32::try_from(bounds.max_bytes).unwrap_or(i32::MAX).max(1);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, max_length);
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true).map_err(SqlError::connect)?;
    conn.pragma_update(None, "trusted_schema", false).map_err(SqlError::connect)?;
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(SqlError::connect)?;
    if !db.read_write {
        conn.pragma_update(None, "query_only", true).map_err(SqlError::connect)?;
    }
    conn.authorizer(Some(authorize));
    Ok(conn)
}

/// What the connection's authorizer refuses, as the guest is told.
const REFUSED: &str = "PRAGMAs other than the schema ones, ATTACH, and creating triggers, views or virtual tables";

/// The connection's authorizer: see the module's doc; everything else is
/// left to the database (read-only) and the limits above.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Pragma { pragma_name, .. } => {
            if SCHEMA_PRAGMAS.iter().any(|allowed| pragma_name.eq_ignore_ascii_case(allowed)) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Attach { .. }
        | AuthAction::Detach { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateVtable { .. } => Authorization::Deny,
        _ => Authorization::Allow,
    }
}

/// The operator's `sqlite:PATH` / `sqlite://PATH[?OPTIONS]` as SQLite's
/// own `file:` URI, whose options (`mode`, `immutable`, …) SQLite reads; a
/// `mode` cannot widen the access the flags above give.
fn file_uri(url: &str) -> String {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.starts_with(":memory:") { path.to_owned() } else { format!("file:{path}") }
}

/// A statement's failure: what to change where a bound of this module
/// refused it, else the database's own words.
fn refused(error: rusqlite::Error, bounds: &Bounds) -> SqlError {
    let (failure, message) = match error {
        rusqlite::Error::SqliteFailure(failure, message) => (failure, message),
        rusqlite::Error::InvalidParameterCount(..) => {
            return SqlError::Invalid(
                "the statement has parameters (`?`, `:name`), which this node cannot bind; write the values into \
                 the statement"
                    .into(),
            );
        }
        other => return SqlError::Failed(other.to_string()),
    };
    match failure.code {
        ErrorCode::TooBig => SqlError::Invalid(format!(
            "the statement reads or builds a value (or row) over {} bytes, more than one call may return; select \
             smaller values",
            bounds.max_bytes
        )),
        ErrorCode::OutOfMemory => SqlError::Invalid(format!(
            "SQLite reached the memory it may use on this host ({HEAP_LIMIT} bytes, shared by all its work); \
             narrow the statement, or try again later"
        )),
        ErrorCode::AuthorizationForStatementDenied => SqlError::Invalid(format!(
            "the statement uses what SQLite databases do not allow here: {REFUSED} (schema PRAGMAs: {})",
            SCHEMA_PRAGMAS.join(", ")
        )),
        _ => SqlError::Refused {
            code: failure.extended_code.to_string(),
            message: message.unwrap_or_else(|| failure.to_string()),
        },
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
    use super::*;

    #[test]
    fn sorts_and_temporary_tables_stay_in_memory() {
        let db = SqlDatabase {
            name: "scratch".into(),
            url: "sqlite::memory:".into(),
            dialect: super::super::Dialect::Sqlite,
            read_write: false,
            tenants: Vec::new(),
        };
        let bounds = Bounds { max_rows: 10, max_bytes: 1 << 20, time: std::time::Duration::from_secs(5) };
        let Ok(conn) = open(&db, &bounds) else { panic!("an in-memory database opens") };
        // The guest may not read it (the authorizer); the host may.
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let store: i64 = conn.pragma_query_value(None, "temp_store", |row| row.get(0)).expect("reads");
        assert_eq!(store, 2, "MEMORY");
    }

    #[test]
    fn urls_become_sqlite_uris() {
        assert_eq!(file_uri("sqlite://data/p.db"), "file:data/p.db");
        assert_eq!(file_uri("sqlite:///srv/p.db?immutable=1"), "file:/srv/p.db?immutable=1");
        assert_eq!(file_uri("sqlite:p.db"), "file:p.db");
        assert_eq!(file_uri("sqlite::memory:"), ":memory:");
    }
}
