//! Where chat history lives: one [`MemoryStore`] over SQLite (a file in the
//! data directory, or in memory for tests) or PostgreSQL, chosen by URL.
//!
//! Queries go through sqlx's `Any` driver with one query text for both
//! dialects (`$1` parameters, which SQLite accepts too; integer
//! timestamps in milliseconds since the Unix epoch), as the control
//! plane's store does. Migrations are kept per dialect in
//! `migrations/memory/{sqlite,postgres}`, append-only, and run on open;
//! the store wants a database (or file) of its own, since sqlx keeps one
//! migration history per database.
//!
//! Every query names the tenant and the agent: a [`Scope`] is built by the
//! host from the run's context, never from anything a guest sends.

use super::limits::{MAX_HISTORY, check_message, check_session};
use crate::Message;
use crate::capabilities::io;
use sandflow_sql_migrations::store::{Dialect, OpenError, StoreUrl};
use sandflow_sql_migrations::{Embedded, embedded};
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

const SQLITE_MIGRATIONS: &[Embedded] = embedded!("../../../migrations/memory/sqlite":
    (1, "0001_memory_message"),
    (2, "0002_memory_message_rowid"),
);
const POSTGRES_MIGRATIONS: &[Embedded] = embedded!("../../../migrations/memory/postgres": (1, "0001_memory_message"));

impl From<OpenError> for MemoryError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::UnsupportedUrl(url) => Self::UnsupportedUrl(url),
            OpenError::Directory { path, source } => Self::Directory { path, source },
            OpenError::Database(error) => Self::Database(error),
        }
    }
}

/// Why the memory store refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported memory store URL `{0}`: use sqlite://PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
    /// The request breaks a rule of the capability (empty session, too large).
    #[error("{0}")]
    Invalid(String),
    /// The database failed (connect, migrate, query).
    #[error("the memory store failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing a queued message failed, or the writer has stopped.
    #[error("the memory store could not write: {0}")]
    Write(String),
    /// A migration failed.
    #[error("cannot migrate the memory store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The directory of the SQLite file could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Whose history a call reads or writes: the run's tenant and agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Tenant (buyer organisation).
    pub tenant: String,
    /// Agent.
    pub agent: String,
}

/// Chat history per (tenant, agent, session), persisted by the host:
/// cheap to clone (one connection pool and one writer).
///
/// Appends go through one writer that stores whatever has queued up in
/// one transaction (group commit): under load, many runs' messages share
/// one commit instead of one each. A SQLite file has a writer thread with
/// its own connection (`sqlite_writer`); PostgreSQL and in-memory SQLite a
/// writer task that inserts the batch as one statement.
/// [`MemoryStore::enqueue`] hands a message to the writer and returns a
/// [`PendingWrite`] at once, so a run goes on while its message is
/// written; whoever answers the run waits for its writes before the answer
/// leaves (see [`PendingWrites`]), so the next request of a session reads
/// what the last one wrote. On SQLite the WAL is checkpointed by a thread
/// of its own, off the writer's path, which the writer finishes between two
/// batches (see `sqlite_writer::checkpoint_wal`).
#[derive(Clone)]
pub struct MemoryStore {
    pool: AnyPool,
    writer: mpsc::UnboundedSender<Queued>,
    /// Set by [`MemoryStore::close`]: the SQLite writer thread, which has
    /// a connection of its own, stores nothing more.
    closed: Arc<AtomicBool>,
    /// Where it is, password hidden (for logs).
    url: String,
}

/// Most messages one insert writes.
const WRITE_BATCH: usize = 64;
/// Columns of one message row.
const COLUMNS: usize = 11;

/// The columns of `memory_message` a message fills, in [`Queued`] order.
const INSERT_COLUMNS: &str =
    "message_id, tenant, agent, session_id, sender, sender_name, text, files, properties, created_at, updated_at";

/// A message waiting for the writer, and who waits for it.
struct Queued {
    values: [String; COLUMNS - 2],
    at: i64,
    done: oneshot::Sender<Result<(), String>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("url", &self.url).finish()
    }
}

impl MemoryStore {
    /// Opens (creating a SQLite file and its directory if needed) and
    /// migrates the store at `url`: `sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://…`. Connections belong to the capabilities' I/O
    /// runtime, so the store can be opened from any runtime (or from
    /// none, with [`MemoryStore::open_blocking`]).
    pub async fn open(url: &str) -> Result<Self, MemoryError> {
        let url = url.to_owned();
        io::run_on_io(async move { Self::connect(&url).await }).await
    }

    /// [`MemoryStore::open`], waiting for it: callable from plain threads
    /// and from inside an async runtime alike (it waits on a thread of its
    /// own, where no runtime is entered).
    pub fn open_blocking(url: &str) -> Result<Self, MemoryError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| io::block_on(Self::open(url)))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The URL of the SQLite file `memory.db` in `data_dir`.
    pub fn sqlite_url_in(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("memory.db").display())
    }

    async fn connect(url: &str) -> Result<Self, MemoryError> {
        let url = StoreUrl::parse(url)?;
        // WAL lets readers run beside the writer; NORMAL sync survives
        // process crashes; writers wait for each other; no commit
        // checkpoints (`sqlite_writer::checkpoint_wal` does).
        let pool = url
            .connect(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA wal_autocheckpoint = 0;",
            )
            .await?;
        match url.dialect {
            Dialect::Sqlite => sandflow_sql_migrations::migrator(SQLITE_MIGRATIONS).await?.run(&pool).await?,
            Dialect::Postgres => sandflow_sql_migrations::migrator(POSTGRES_MIGRATIONS).await?.run(&pool).await?,
        }
        let (writer, queue) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        match url.sqlite_file() {
            // A file: a thread of its own writes with its own connection,
            // no async hand-offs on the way (see `sqlite_writer`).
            Some(file) => {
                let open = |what| sqlite_writer::open(file).map_err(|e| MemoryError::Write(format!("{what}: {e}")));
                let (writer_connection, checkpointer_connection) = (open("the writer")?, open("the checkpointer")?);
                let finish_checkpoint = Arc::new(AtomicBool::new(false));
                spawn("sandflow-memory-writer", {
                    let (closed, finish) = (closed.clone(), finish_checkpoint.clone());
                    move || sqlite_writer::write_queued(writer_connection, queue, &closed, &finish)
                })?;
                spawn("sandflow-ckpt", {
                    let closed = closed.clone();
                    move || sqlite_writer::checkpoint_wal(checkpointer_connection, &closed, &finish_checkpoint)
                })?;
            }
            None => {
                tokio::spawn(write_queued(pool.clone(), queue));
            }
        }
        Ok(Self { pool, writer, closed, url: url.shown })
    }

    /// Appends `message` to its session in `scope`, once it is stored.
    pub async fn append(&self, scope: &Scope, message: &Message) -> Result<(), MemoryError> {
        self.enqueue(scope, message)?.wait().await
    }

    /// Checks `message` and hands it to the writer; the returned
    /// [`PendingWrite`] says when (and whether) it was stored. Messages are
    /// stored in the order they are enqueued.
    pub fn enqueue(&self, scope: &Scope, message: &Message) -> Result<PendingWrite, MemoryError> {
        check_session(&message.session_id)?;
        check_message(message)?;
        let files = serde_json::to_string(&message.files).unwrap_or_else(|_| "[]".into());
        let values = [
            // Time-ordered, so the unique index on `message_id` grows at its
            // end: a commit dirties a few pages, not one per message.
            uuid::Uuid::now_v7().to_string(),
            scope.tenant.clone(),
            scope.agent.clone(),
            message.session_id.clone(),
            message.sender.clone(),
            message.sender_name.clone(),
            message.text.clone(),
            files,
            normalized_properties(&message.properties),
        ];
        let (done, stored) = oneshot::channel();
        self.writer.send(Queued { values, at: now_ms(), done }).map_err(|_| writer_stopped())?;
        Ok(PendingWrite(stored))
    }

    /// The last `limit` messages (at most [`MAX_HISTORY`]) of `session_id`
    /// in `scope`, oldest first. Each message's `properties` carries what
    /// the store knows of it under `stored`: its `id` and its `timestamp`
    /// (`YYYY-MM-DD HH:MM:SS.ffffff UTC`, as Langflow writes them).
    pub async fn history(&self, scope: &Scope, session_id: &str, limit: u32) -> Result<Vec<Message>, MemoryError> {
        check_session(session_id)?;
        let limit = limit.min(MAX_HISTORY);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT message_id, sender, sender_name, session_id, text, files, properties, created_at \
             FROM memory_message WHERE tenant = $1 AND agent = $2 AND session_id = $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(session_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut messages = rows.iter().map(row_message).collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let pool = self.pool.clone();
        io::run_on_io(async move { pool.close().await }).await;
    }
}

/// Starts one of a SQLite file's threads.
fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), MemoryError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(drop)
        .map_err(|e| MemoryError::Write(format!("cannot start {name}: {e}")))
}

fn writer_stopped() -> MemoryError {
    MemoryError::Write("the writer has stopped".into())
}

/// One message on its way into the store.
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<(), String>>);

impl PendingWrite {
    /// Waits until the message is stored, or says why it was not.
    pub async fn wait(self) -> Result<(), MemoryError> {
        self.0.await.map_err(|_| writer_stopped())?.map_err(MemoryError::Write)
    }
}

/// The messages a run enqueued, not yet known to be stored.
#[derive(Debug, Default)]
pub struct PendingWrites(Vec<PendingWrite>);

impl PendingWrites {
    /// Adds one.
    pub fn push(&mut self, write: PendingWrite) {
        self.0.push(write);
    }

    /// Takes them all, leaving none.
    pub fn take(&mut self) -> Self {
        Self(std::mem::take(&mut self.0))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Waits until every one is stored; the first failure, if any.
    pub async fn settle(self) -> Result<(), MemoryError> {
        let mut outcome = Ok(());
        for write in self.0 {
            let stored = write.wait().await;
            if outcome.is_ok() {
                outcome = stored;
            }
        }
        outcome
    }
}

/// The writer: takes what has queued up (at most [`WRITE_BATCH`]), inserts
/// it in one statement, in queue order (the `id` order history reads), and
/// tells each waiting append how it went.
async fn write_queued(pool: AnyPool, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let written = insert(&pool, &batch).await.map_err(|e| e.to_string());
        for queued in batch.drain(..) {
            let _ = queued.done.send(written.clone());
        }
    }
}

async fn insert(pool: &AnyPool, batch: &[Queued]) -> Result<(), sqlx::Error> {
    use std::fmt::Write as _;
    let mut sql = format!("INSERT INTO memory_message ({INSERT_COLUMNS}) VALUES ");
    for row in 0..batch.len() {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            let _ = write!(sql, "{}${}", if column == 0 { "" } else { ", " }, row * COLUMNS + column + 1);
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for queued in batch {
        for value in &queued.values {
            query = query.bind(value.as_str());
        }
        query = query.bind(queued.at).bind(queued.at);
    }
    query.execute(pool).await?;
    Ok(())
}

/// The writer of a SQLite file: a plain thread with its own connection
/// and one prepared insert, taking what has queued up (at most
/// [`WRITE_BATCH`]) into one transaction. sqlx would add two hand-offs per
/// batch (the I/O runtime, then its connection thread) and re-read every
/// parameter's name on each bind. Beside it, the file's checkpointer, a
/// thread with a connection of its own too.
mod sqlite_writer {
    use super::{Arc, AtomicBool, COLUMNS, INSERT_COLUMNS, Ordering, Queued, WRITE_BATCH};
    use rusqlite::{Connection, ToSql, params_from_iter};
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// Opens a connection of the writer's or the checkpointer's to the
    /// (migrated) file at `path`, with the pool's pragmas.
    pub(super) fn open(path: &str) -> rusqlite::Result<Connection> {
        let connection = Connection::open(path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -32768;",
        )?;
        Ok(connection)
    }

    /// Writes until every sender is gone; refuses once `closed`. Finishes
    /// the background checkpoint when it sets `finish` (see
    /// [`checkpoint_wal`]).
    pub(super) fn write_queued(
        mut connection: Connection,
        mut queue: mpsc::UnboundedReceiver<Queued>,
        closed: &AtomicBool,
        finish: &AtomicBool,
    ) {
        let placeholders = ["?"; COLUMNS].join(", ");
        let sql = format!("INSERT INTO memory_message ({INSERT_COLUMNS}) VALUES ({placeholders})");
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(first) = next(&mut queue) {
            batch.push(first);
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(queued) => batch.push(queued),
                    Err(_) => break,
                }
            }
            let written = if closed.load(Ordering::SeqCst) {
                Err("the memory store is closed".to_owned())
            } else {
                insert(&mut connection, &sql, &batch).map_err(|e| e.to_string())
            };
            for queued in batch.drain(..) {
                let _ = queued.done.send(written.clone());
            }
            if finish.swap(false, Ordering::AcqRel) {
                let _ = checkpoint(&connection);
            }
        }
    }

    /// The next queued message, `None` once every sender is gone. Before it
    /// sleeps, the writer yields its core to the runs that append (see
    /// `crate::idle`): they need not wake it, and a batch gathers meanwhile.
    fn next(queue: &mut mpsc::UnboundedReceiver<Queued>) -> Option<Queued> {
        crate::idle::poll_yielding(|| queue.try_recv().ok()).or_else(|| queue.blocking_recv())
    }

    /// How often the WAL is checkpointed into the database file.
    pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
    /// A catch-up pass that found fewer new frames than this is the last.
    const FEW_FRAMES: i64 = 64;
    /// Most catch-up passes of one background checkpoint.
    const MAX_PASSES: usize = 8;

    /// Checkpoints the WAL in the background every [`CHECKPOINT_EVERY`],
    /// until the store is `closed` or its writer has ended. SQLite's
    /// automatic checkpoint runs inside the commit that crosses its
    /// threshold, so one append in a thousand waited for the copy (and the
    /// database file's `fsync`) — the 200 ms tail the HTTP benchmark
    /// showed. A `PASSIVE` checkpoint here never blocks the writer or
    /// readers.
    ///
    /// It copies only the WAL as it stood when it began, though, and SQLite
    /// starts the WAL over only once all of it has been copied: beside a
    /// writer that never pauses, the WAL grew by about 160 MB a second for
    /// as long as a load lasted. So each checkpoint ends by setting
    /// `finish`: the writer then copies what came in meanwhile, between two
    /// batches, and its next commit starts the WAL over. While the writer
    /// copies, appends wait: so the checkpoint first catches up in passes,
    /// each copying what came in during the one before, until a pass finds
    /// fewer than [`FEW_FRAMES`] new frames. One pass left the writer 5–9 ms
    /// of copying under the HTTP benchmark; the passes leave it 1–2 ms.
    pub(super) fn checkpoint_wal(connection: Connection, closed: &AtomicBool, finish: &Arc<AtomicBool>) {
        // The writer holds the other reference until it ends.
        while !closed.load(Ordering::SeqCst) && Arc::strong_count(finish) > 1 {
            std::thread::sleep(CHECKPOINT_EVERY);
            catch_up(|| checkpoint(&connection));
            finish.store(true, Ordering::Release);
        }
    }

    /// Runs `pass` (a checkpoint, saying how many frames the WAL held)
    /// until one finds fewer than [`FEW_FRAMES`] frames more than the pass
    /// before, fails, or [`MAX_PASSES`] have run; how many ran.
    pub(super) fn catch_up(mut pass: impl FnMut() -> Option<i64>) -> usize {
        let mut seen = 0;
        for passes in 1..=MAX_PASSES {
            match pass() {
                Some(frames) if frames - seen >= FEW_FRAMES => seen = frames,
                _ => return passes,
            }
        }
        MAX_PASSES
    }

    /// Copies what it can of the WAL into the database file; once all of
    /// it is copied, the next commit starts the WAL over. The frames the
    /// WAL held, or `None` when nothing was checkpointed. A failure only
    /// leaves the WAL longer: it is logged, and the next background
    /// checkpoint tries again.
    fn checkpoint(connection: &Connection) -> Option<i64> {
        let copied = connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)));
        match copied {
            // SQLite says -1 when another connection held the checkpoint
            // lock (the writer's or the background one).
            Ok((-1, _)) => {
                tracing::debug!("memory store: another checkpoint was running");
                None
            }
            Ok((frames, copied)) => {
                if copied < frames {
                    tracing::debug!(
                        frames,
                        copied,
                        "memory store: a history read kept part of the WAL from the checkpoint"
                    );
                }
                Some(frames)
            }
            Err(error) => {
                tracing::warn!(%error, "memory store: WAL checkpoint failed; retrying");
                None
            }
        }
    }

    /// Inserts `batch` with `sql`, the one-row insert, in one transaction.
    fn insert(connection: &mut Connection, sql: &str, batch: &[Queued]) -> rusqlite::Result<()> {
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(sql)?;
            for queued in batch {
                let texts = queued.values.iter().map(|v| v as &dyn ToSql);
                let times = [&queued.at as &dyn ToSql, &queued.at];
                insert.execute(params_from_iter(texts.chain(times)))?;
            }
        }
        transaction.commit()
    }
}

fn row_message(row: &sqlx::any::AnyRow) -> Result<Message, sqlx::Error> {
    let files: String = row.try_get("files")?;
    let properties: String = row.try_get("properties")?;
    let mut properties: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&properties).unwrap_or_default();
    let id: String = row.try_get("message_id")?;
    let created_at: i64 = row.try_get("created_at")?;
    properties.insert("stored".into(), serde_json::json!({ "id": id, "timestamp": langflow_timestamp(created_at) }));
    Ok(Message {
        text: row.try_get("text")?,
        sender: row.try_get("sender")?,
        sender_name: row.try_get("sender_name")?,
        session_id: row.try_get("session_id")?,
        files: serde_json::from_str(&files).unwrap_or_default(),
        properties: serde_json::Value::Object(properties).to_string(),
    })
}

/// The guest's properties as a JSON object (anything else becomes `{}`),
/// without a `stored` entry: only the store says what it stored.
fn normalized_properties(properties: &str) -> String {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(properties).unwrap_or_default();
    object.remove("stored");
    serde_json::Value::Object(object).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds since the epoch as Langflow prints a message's timestamp:
/// `2024-05-01 09:30:00.123000 UTC`.
pub(crate) fn langflow_timestamp(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1_000 % 60, in_day % 1_000);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{:06} UTC", milli * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain message from the user in session `s`.
    fn user_message(text: &str) -> crate::Message {
        crate::Message {
            text: text.into(),
            sender: "User".into(),
            sender_name: "User".into(),
            session_id: "s".into(),
            files: vec![],
            properties: "{}".into(),
        }
    }

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/memory");
        for (dialect, list) in [("sqlite", SQLITE_MIGRATIONS), ("postgres", POSTGRES_MIGRATIONS)] {
            sandflow_sql_migrations::check_directory(&dir.join(dialect), list).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn timestamps_read_like_langflow() {
        assert_eq!(langflow_timestamp(0), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(langflow_timestamp(1_714_555_800_123), "2024-05-01 09:30:00.123000 UTC");
        assert_eq!(langflow_timestamp(951_782_400_000), "2000-02-29 00:00:00.000000 UTC");
    }

    #[test]
    fn an_in_memory_store_keeps_history_while_it_is_open() {
        let store = MemoryStore::open_blocking("sqlite::memory:").expect("opens");
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        let message = crate::Message {
            text: "hi".into(),
            sender: "User".into(),
            sender_name: "User".into(),
            session_id: "s".into(),
            files: vec!["a.txt".into()],
            properties: r#"{"icon":"x"}"#.into(),
        };
        io::block_on(store.append(&scope, &message)).expect("stored");
        let back = io::block_on(store.history(&scope, "s", 10)).expect("read");
        assert_eq!((back[0].text.as_str(), back[0].files.as_slice()), ("hi", ["a.txt".to_owned()].as_slice()));
        assert!(back[0].properties.contains(r#""icon":"x""#) && back[0].properties.contains(r#""stored""#));
        // Opening from inside an async runtime works too.
        let inside = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        inside.block_on(async { MemoryStore::open_blocking("sqlite::memory:").expect("opens") });
    }

    #[test]
    fn a_store_made_before_the_rowid_migration_keeps_its_history_in_order() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("memory.db").display());
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        io::block_on(async {
            // A store as version 1 left it, with the session's newest message
            // deleted (AUTOINCREMENT kept its id from coming back).
            let pool = StoreUrl::parse(&url).expect("url").connect("").await.expect("connect");
            sandflow_sql_migrations::migrator(&SQLITE_MIGRATIONS[..1]).await.expect("v1").run(&pool).await.expect("v1");
            for (id, text) in [(1, "first"), (2, "second"), (3, "deleted")] {
                sqlx::query(&format!("INSERT INTO memory_message ({INSERT_COLUMNS}) VALUES ($1, 't', 'a', 's', 'User', 'User', $2, '[]', '{{}}', 0, 0)"))
                    .bind(format!("m{id}"))
                    .bind(text)
                    .execute(&pool)
                    .await
                    .expect("v1 insert");
            }
            sqlx::query("DELETE FROM memory_message WHERE text = 'deleted'").execute(&pool).await.expect("delete");
            pool.close().await;
        });
        let store = MemoryStore::open_blocking(&url).expect("migrates");
        io::block_on(store.append(&scope, &user_message("third"))).expect("stored");
        let texts: Vec<String> =
            io::block_on(store.history(&scope, "s", 10)).expect("read").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["first", "second", "third"]);
        // Appends no longer keep a sequence row up to date.
        let pool = store.pool.clone();
        let sequences: i64 = io::block_on(io::run_on_io(async move {
            sqlx::query("SELECT count(*) FROM sqlite_sequence WHERE name = 'memory_message'")
                .fetch_one(&pool)
                .await
                .and_then(|row| row.try_get(0))
        }))
        .expect("sequence rows");
        assert_eq!(sequences, 0);
        io::block_on(store.close());
    }

    /// Once the background checkpoint asks for it (`finish`), the writer
    /// copies what is left of the WAL after its next batch, and the commit
    /// after that starts the WAL over. Beside a writer that never pauses,
    /// the background checkpoint alone never copied all of the WAL, so
    /// SQLite never started it over: it grew for as long as the load went on.
    #[test]
    fn the_writer_finishes_a_checkpoint_so_the_wal_starts_over() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = MemoryStore::sqlite_url_in(dir.path());
        // Migrated by a pool of the test's own: a store's background
        // checkpoint could still hold the checkpoint lock below, and the
        // writer's checkpoint would find it busy.
        let pool = io::block_on(io::run_on_io({
            let url = url.clone();
            async move {
                let pool = StoreUrl::parse(&url)?.connect("PRAGMA journal_mode = WAL;").await?;
                sandflow_sql_migrations::migrator(SQLITE_MIGRATIONS).await?.run(&pool).await?;
                pool.close().await;
                Ok::<_, MemoryError>(pool)
            }
        }))
        .expect("migrates");
        // A writer of the test's own, and no background checkpoint.
        let connection = sqlite_writer::open(&dir.path().join("memory.db").to_string_lossy()).expect("opens");
        let (writer, queue) = mpsc::unbounded_channel();
        let (closed, finish) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let thread = std::thread::spawn({
            let (closed, finish) = (closed.clone(), finish.clone());
            move || sqlite_writer::write_queued(connection, queue, &closed, &finish)
        });
        let store = MemoryStore { pool, writer, closed, url };
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        let append = |text: &str| io::block_on(store.append(&scope, &user_message(text))).expect("stored");
        let restarts = || wal_restarts(dir.path());
        append("one");
        let before = restarts();
        append("two");
        assert_eq!(restarts(), before, "nothing asked for a checkpoint");
        finish.store(true, Ordering::Release);
        append("three");
        append("four");
        assert_eq!(restarts(), before + 1, "the WAL started over");
        drop(store);
        thread.join().expect("the writer ends with its last sender");
    }

    #[test]
    fn catching_up_stops_once_a_pass_finds_few_new_frames() {
        let passes = |frames: &[Option<i64>]| {
            let mut frames = frames.iter().copied();
            sqlite_writer::catch_up(|| frames.next().expect("no more passes than frames"))
        };
        // A WAL growing by 400, then 60 frames during the passes.
        assert_eq!(passes(&[Some(10_000), Some(10_400), Some(10_460)]), 3);
        // An idle WAL: the second pass finds nothing new.
        assert_eq!(passes(&[Some(500), Some(500)]), 2);
        // A small WAL: one pass.
        assert_eq!(passes(&[Some(20)]), 1);
        // A failed pass ends it.
        assert_eq!(passes(&[Some(10_000), None]), 2);
        // A writer that outruns every pass: eight at most.
        let mut frames = 0;
        assert_eq!(
            sqlite_writer::catch_up(|| {
                frames += 1_000;
                Some(frames)
            }),
            8
        );
    }

    /// How often the WAL of the store in `dir` started over: its header's
    /// checkpoint sequence number.
    fn wal_restarts(dir: &Path) -> u32 {
        let header = std::fs::read(dir.join("memory.db-wal")).expect("a WAL");
        u32::from_be_bytes(header[12..16].try_into().expect("a WAL header"))
    }

    /// The store's own checkpointer: while appends go on, the WAL starts
    /// over. (Whether the writer finishes a checkpoint when asked is
    /// `the_writer_finishes_a_checkpoint_so_the_wal_starts_over`: here the
    /// writer keeps up with one appending thread and pauses now and then.)
    #[test]
    fn the_wal_starts_over_while_appends_go_on() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = MemoryStore::open_blocking(&MemoryStore::sqlite_url_in(dir.path())).expect("opens");
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        io::block_on(store.append(&scope, &user_message("first"))).expect("stored");
        let before = wal_restarts(dir.path());
        // Many messages in flight, so the writer always has a batch waiting.
        let mut pending = std::collections::VecDeque::new();
        let deadline = std::time::Instant::now() + 10 * sqlite_writer::CHECKPOINT_EVERY;
        while wal_restarts(dir.path()) == before {
            assert!(std::time::Instant::now() < deadline, "the WAL never started over");
            pending.push_back(store.enqueue(&scope, &user_message("more")).expect("queued"));
            if pending.len() > 4 * WRITE_BATCH {
                io::block_on(pending.pop_front().expect("one").wait()).expect("stored");
            }
        }
        io::block_on(store.close());
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(sandflow_sql_migrations::store::redact_url("postgres://u:secret@h/d"), "postgres://u:***@h/d");
        assert_eq!(sandflow_sql_migrations::store::redact_url("sqlite:///tmp/m.db"), "sqlite:///tmp/m.db");
    }

    #[test]
    fn a_guest_cannot_forge_what_was_stored() {
        assert_eq!(normalized_properties(r#"{"stored":{"id":"x"},"icon":"a"}"#), r#"{"icon":"a"}"#);
        assert_eq!(normalized_properties("not json"), "{}");
    }
}
