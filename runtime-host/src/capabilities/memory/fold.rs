//! The folder of a SQLite memory store: a thread with a connection of its
//! own that moves the append log (`super::log`) into SQLite, one
//! transaction per sealed log file, and checkpoints the WAL after each.
//!
//! It is the only writer of the file, so nothing waits on its commits but
//! itself: a commit is `synchronous = FULL` (the WAL is synced before the
//! log file is emptied), and the checkpoint that follows copies the whole
//! WAL, so the WAL starts over at the next fold. It runs with rusqlite
//! rather than sqlx: prepared inserts of many rows, no async hand-offs.

use super::log::{AppendLog, Logged, Next};
use super::store::{INSERT_COLUMNS, MemoryError};
use rusqlite::{Connection, ToSql, params_from_iter};
use std::borrow::Borrow;

/// Opens the folder's connection to the (migrated) file at `path`.
pub(super) fn open(path: &str) -> Result<Connection, MemoryError> {
    let open = || {
        let connection = Connection::open(path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -32768;",
        )?;
        Ok(connection)
    };
    open().map_err(|e: rusqlite::Error| database_error("cannot open", &e))
}

/// Puts what the log files still held at open into SQLite (a message
/// already there, from a fold whose file was not yet emptied, is kept
/// once), and answers the id the next append gets.
pub(super) fn replay(connection: &mut Connection, left: &[Logged]) -> Result<i64, MemoryError> {
    if !left.is_empty() {
        insert(connection, left).map_err(|e| database_error("cannot replay the log into", &e))?;
        tracing::info!(messages = left.len(), "memory store: stored what the log held when the process last ended");
    }
    let largest: Option<i64> = connection
        .query_row("SELECT max(id) FROM memory_message", [], |row| row.get(0))
        .map_err(|e| database_error("cannot read", &e))?;
    largest
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| MemoryError::Write("the memory database has used up its message ids".into()))
}

/// Folds until the log is closed and empty, then closes the connection. A
/// failed fold leaves the sealed file as it is, to be folded again at the
/// next turn; once the store is closed, it ends instead, and the next open
/// replays the file.
pub(super) fn fold_until_closed(mut connection: Connection, log: &AppendLog) {
    loop {
        let segment = match log.next_to_fold() {
            Next::Done => break,
            Next::Idle => continue,
            Next::Fold(segment) => segment,
        };
        let started = std::time::Instant::now();
        match insert(&mut connection, &segment.messages) {
            Ok(()) => {
                if let Err(error) = log.folded() {
                    if log.is_closed() {
                        // Folding again at once would fail the same way,
                        // for ever; the next open replays the file, and
                        // what SQLite has already is kept once.
                        tracing::warn!(%error, "memory store: folded, but the log file stays for the next open");
                        break;
                    }
                    tracing::warn!(%error, "memory store: folded, but the log file stays; folding it again");
                }
                checkpoint(&connection);
                tracing::debug!(
                    messages = segment.messages.len(),
                    elapsed_us = started.elapsed().as_micros(),
                    "memory store: folded the log"
                );
            }
            Err(error) if log.is_closed() => {
                tracing::error!(%error, "memory store: the last fold failed; the log keeps it for the next open");
                break;
            }
            Err(error) => tracing::error!(%error, "memory store: folding the log failed; retrying"),
        }
    }
    // Closes the connection before the store counts as closed.
    drop(connection);
}

/// Rows one insert statement writes: a fold's messages go in statements of
/// this many rows (the rest one by one), which takes about a fifth less
/// time per message than one statement per row (BENCHMARKS.md, "Runtime:
/// HTTP"). 768 parameters a statement, under SQLite's limit (32,766, and
/// 999 before 3.32).
pub(super) const ROWS_PER_INSERT: usize = 64;

/// Inserts `messages` in one transaction with the ids the log gave them;
/// one already there (the same `message_id`: a fold or replay repeated)
/// is left as it is. An id taken by another message (a writer that went
/// around the log) fails the fold, loudly, rather than dropping either.
fn insert(connection: &mut Connection, messages: &[impl Borrow<Logged>]) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut chunks = messages.chunks_exact(ROWS_PER_INSERT);
        let mut many = transaction.prepare_cached(&insert_sql(ROWS_PER_INSERT))?;
        for chunk in chunks.by_ref() {
            many.execute(params_from_iter(chunk.iter().flat_map(|logged| row(logged.borrow()))))?;
        }
        let mut one = transaction.prepare_cached(&insert_sql(1))?;
        for logged in chunks.remainder() {
            one.execute(params_from_iter(row(logged.borrow())))?;
        }
    }
    transaction.commit()
}

/// The insert of `rows` rows, each of `row`'s parameters.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; super::store::COLUMNS + 1].join(", "));
    let values = vec![row; rows].join(", ");
    format!("INSERT INTO memory_message (id, {INSERT_COLUMNS}) VALUES {values} ON CONFLICT (message_id) DO NOTHING")
}

/// The parameters of one row: the id, the texts, the time twice.
fn row(logged: &Logged) -> impl Iterator<Item = &dyn ToSql> {
    let message = &logged.message;
    std::iter::once(&logged.id as &dyn ToSql)
        .chain(message.values.iter().map(|v| v as &dyn ToSql))
        .chain([&message.at as &dyn ToSql, &message.at])
}

/// Copies the WAL into the database file; with no other writer, all of
/// it, unless a history read holds an old snapshot (then the next fold's
/// checkpoint copies the rest). A failure only leaves the WAL longer.
fn checkpoint(connection: &Connection) {
    let copied = connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)));
    match copied {
        Ok((frames, copied)) if copied < frames => {
            tracing::debug!(frames, copied, "memory store: a history read kept part of the WAL from the checkpoint");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "memory store: WAL checkpoint failed; retrying at the next fold"),
    }
}

fn database_error(what: &str, error: &rusqlite::Error) -> MemoryError {
    MemoryError::Write(format!("{what} the memory database: {error}"))
}
