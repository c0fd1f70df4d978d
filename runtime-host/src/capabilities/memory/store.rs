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

use super::fold;
use super::limits::{MAX_HISTORY, check_message, check_session};
use super::log::{AppendLog, Logged, MAX_UNFOLDED};
use crate::Message;
use crate::capabilities::io;
use sandflow_sql_migrations::store::{Dialect, OpenError, StoreUrl};
use sandflow_sql_migrations::{Embedded, embedded};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
/// cheap to clone (one connection pool and one way to write).
///
/// A SQLite file is written through an append log (`super::log`): an
/// append is stored once it is at the end of the log file, and a thread of
/// the store's folds the log into SQLite in one transaction every half
/// second (`super::fold`); history reads merge the two. PostgreSQL and
/// in-memory SQLite have a writer task that stores whatever has queued up
/// as one statement (group commit): [`MemoryStore::enqueue`] hands it a
/// message and returns a [`PendingWrite`] at once, so a run goes on while
/// its message is written; whoever answers the run waits for its writes
/// before the answer leaves (see [`PendingWrites`]), so the next request of
/// a session reads what the last one wrote.
#[derive(Clone)]
pub struct MemoryStore {
    pool: AnyPool,
    writes: Writes,
    /// Where it is, password hidden (for logs).
    url: String,
}

/// How a store's appends are written.
#[derive(Clone)]
enum Writes {
    /// A SQLite file's append log.
    Log(Arc<Folded>),
    /// The writer task's queue.
    Queue(WriteQueue),
}

/// The writer task's queue, and the bytes of the messages in it.
#[derive(Clone)]
struct WriteQueue {
    sender: mpsc::UnboundedSender<Queued>,
    bytes: Arc<AtomicUsize>,
}

/// Most bytes of messages waiting for the writer task; beyond it, appends
/// are refused (the database is failing or far behind, or a guest floods
/// it), as the append log refuses past [`MAX_UNFOLDED`].
const MAX_QUEUED_BYTES: usize = 64 << 20;

/// A SQLite file's append log and its folder thread, which folds what is
/// left and ends once the last clone of the store is gone (or closed).
struct Folded {
    log: Arc<AppendLog>,
    /// Answered when the folder has ended.
    ended: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Drop for Folded {
    fn drop(&mut self) {
        self.log.close();
    }
}

/// Most messages one insert of the writer task writes.
const WRITE_BATCH: usize = 64;
/// Columns of one message row (but its `id`).
pub(super) const COLUMNS: usize = 11;
/// The texts of a row: all its columns but the two times.
pub(super) const TEXTS: usize = COLUMNS - 2;

/// The columns of `memory_message` a message fills, in [`NewMessage`]
/// order: its texts, then the time twice.
pub(super) const INSERT_COLUMNS: &str =
    "message_id, tenant, agent, session_id, sender, sender_name, text, files, properties, created_at, updated_at";

/// A message as a new row holds it.
#[derive(Debug)]
pub(super) struct NewMessage {
    /// `message_id`, `tenant`, `agent`, `session_id` and the rest of
    /// [`INSERT_COLUMNS`] up to `properties`.
    pub values: [String; TEXTS],
    /// When it was appended, in milliseconds since the Unix epoch.
    pub at: i64,
}

/// A message waiting for the writer task, and who waits for it.
struct Queued {
    message: NewMessage,
    /// The message's bytes, counted in [`WriteQueue::bytes`].
    bytes: usize,
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
        // checkpoints (a SQLite file's folder does, `super::fold`).
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
        let writes = match url.sqlite_file() {
            Some(file) => {
                // Blocking file and database work, and maybe a wait for
                // the lock of a store that is closing.
                let file = file.to_owned();
                let folded = tokio::task::spawn_blocking(move || open_log(&file, MAX_UNFOLDED))
                    .await
                    .map_err(|e| MemoryError::Write(format!("opening the log failed: {e}")))??;
                Writes::Log(Arc::new(folded))
            }
            None => {
                let (sender, queue) = mpsc::unbounded_channel();
                let bytes = Arc::new(AtomicUsize::new(0));
                tokio::spawn(write_queued(pool.clone(), queue, bytes.clone()));
                Writes::Queue(WriteQueue { sender, bytes })
            }
        };
        Ok(Self { pool, writes, url: url.shown })
    }

    /// Appends `message` to its session in `scope`, once it is stored.
    pub async fn append(&self, scope: &Scope, message: &Message) -> Result<(), MemoryError> {
        self.enqueue(scope, message)?.wait().await
    }

    /// Checks `message` and stores it (a SQLite file: before this returns)
    /// or hands it to the writer; the returned [`PendingWrite`] says when
    /// (and whether) it was stored. Messages are stored in the order they
    /// are enqueued. A refused message (or a stopped writer task) is an error
    /// here; a write that failed shows when its [`PendingWrite`] is awaited.
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
        let message = NewMessage { values, at: now_ms() };
        match &self.writes {
            // A failed write fails the run as the writer task's does, when
            // its writes settle.
            Writes::Log(folded) => Ok(PendingWrite(match folded.log.append(message) {
                Ok(()) => Pending::Stored,
                Err(error) => Pending::Failed(error),
            })),
            Writes::Queue(queue) => {
                let bytes = message.values.iter().map(String::len).sum::<usize>();
                if queue.bytes.fetch_add(bytes, Ordering::SeqCst) + bytes > MAX_QUEUED_BYTES {
                    queue.bytes.fetch_sub(bytes, Ordering::SeqCst);
                    return Err(MemoryError::Write(format!(
                        "over {} MiB of messages wait to be stored; try again later",
                        MAX_QUEUED_BYTES >> 20
                    )));
                }
                let (done, stored) = oneshot::channel();
                queue.sender.send(Queued { message, bytes, done }).map_err(|_| writer_stopped())?;
                Ok(PendingWrite(Pending::Queued(stored)))
            }
        }
    }

    /// The last `limit` messages (at most [`MAX_HISTORY`]) of `session_id`
    /// in `scope`, oldest first. Each message's `properties` carries what
    /// the store knows of it under `stored`: its `id` and its `timestamp`
    /// (`YYYY-MM-DD HH:MM:SS.ffffff UTC`, as Langflow writes them).
    pub async fn history(&self, scope: &Scope, session_id: &str, limit: u32) -> Result<Vec<Message>, MemoryError> {
        check_session(session_id)?;
        let limit = usize::try_from(limit.min(MAX_HISTORY)).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // By id: the log's newest, and the database's where the log has
        // fewer than `limit` (a message in both is one).
        let mut messages: BTreeMap<i64, Message> = match &self.writes {
            Writes::Log(folded) => folded
                .log
                .recent(&scope.tenant, &scope.agent, session_id, limit)
                .iter()
                .map(|logged| (logged.id, logged_message(logged)))
                .collect(),
            Writes::Queue(_) => BTreeMap::new(),
        };
        if messages.len() < limit {
            let rows = sqlx::query(
                "SELECT id, message_id, sender, sender_name, session_id, text, files, properties, created_at \
                 FROM memory_message WHERE tenant = $1 AND agent = $2 AND session_id = $3 ORDER BY id DESC LIMIT $4",
            )
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .bind(session_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                if let std::collections::btree_map::Entry::Vacant(entry) = messages.entry(id) {
                    entry.insert(row_message(row)?);
                }
            }
        }
        let older = messages.len().saturating_sub(limit);
        Ok(messages.into_values().skip(older).collect())
    }

    /// Stores nothing more, then closes every connection (waits for those
    /// in use); a SQLite file's log is folded into it first.
    pub async fn close(&self) {
        if let Writes::Log(folded) = &self.writes {
            folded.log.close();
            let ended = folded.ended.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(ended) = ended {
                let _ = ended.await;
            }
        }
        let pool = self.pool.clone();
        io::run_on_io(async move { pool.close().await }).await;
    }
}

/// Opens the append log of the SQLite file `file`, putting what it still
/// holds into the database, and starts its folder.
fn open_log(file: &str, max_unfolded: u64) -> Result<Folded, MemoryError> {
    let mut connection = fold::open(file)?;
    let log = Arc::new(AppendLog::open(file, max_unfolded, |left| fold::replay(&mut connection, left))?);
    let (ended, on_end) = oneshot::channel();
    std::thread::Builder::new()
        .name("sandflow-memory-fold".into())
        .spawn({
            let log = log.clone();
            move || {
                fold::fold_until_closed(connection, &log);
                log.unlock();
                let _ = ended.send(());
            }
        })
        .map_err(|e| MemoryError::Write(format!("cannot start the memory store's folder: {e}")))?;
    Ok(Folded { log, ended: Mutex::new(Some(on_end)) })
}

fn writer_stopped() -> MemoryError {
    MemoryError::Write("the writer has stopped".into())
}

/// One message on its way into the store.
#[derive(Debug)]
pub struct PendingWrite(Pending);

#[derive(Debug)]
enum Pending {
    /// Stored already.
    Stored,
    /// Not stored, and never will be.
    Failed(MemoryError),
    /// With the writer task.
    Queued(oneshot::Receiver<Result<(), String>>),
}

impl PendingWrite {
    /// Waits until the message is stored, or says why it was not.
    pub async fn wait(self) -> Result<(), MemoryError> {
        match self.0 {
            Pending::Stored => Ok(()),
            Pending::Failed(error) => Err(error),
            Pending::Queued(stored) => stored.await.map_err(|_| writer_stopped())?.map_err(MemoryError::Write),
        }
    }
}

/// The messages a run enqueued, not yet known to be stored.
#[derive(Debug, Default)]
pub struct PendingWrites(Vec<PendingWrite>);

impl PendingWrites {
    /// Adds one (none if it is stored already).
    pub fn push(&mut self, write: PendingWrite) {
        if !matches!(write.0, Pending::Stored) {
            self.0.push(write);
        }
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
async fn write_queued(pool: AnyPool, mut queue: mpsc::UnboundedReceiver<Queued>, queued_bytes: Arc<AtomicUsize>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let written = insert(&pool, &batch).await.map_err(|e| e.to_string());
        for queued in batch.drain(..) {
            queued_bytes.fetch_sub(queued.bytes, Ordering::SeqCst);
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
        for value in &queued.message.values {
            query = query.bind(value.as_str());
        }
        query = query.bind(queued.message.at).bind(queued.message.at);
    }
    query.execute(pool).await?;
    Ok(())
}

/// A message as a row of the database holds it.
fn row_message(row: &sqlx::any::AnyRow) -> Result<Message, sqlx::Error> {
    let [id, sender, sender_name, session_id, text, files, properties] =
        ["message_id", "sender", "sender_name", "session_id", "text", "files", "properties"]
            .map(|column| row.try_get::<String, _>(column));
    let stored = NewMessage {
        values: [id?, String::new(), String::new(), session_id?, sender?, sender_name?, text?, files?, properties?],
        at: row.try_get("created_at")?,
    };
    Ok(stored_message(&stored))
}

/// A message as the log holds it.
fn logged_message(logged: &Logged) -> Message {
    stored_message(&logged.message)
}

/// What a guest reads of a stored message: its own fields, and under
/// `stored` in its properties, its id and when it was stored.
fn stored_message(stored: &NewMessage) -> Message {
    let [id, _, _, session_id, sender, sender_name, text, files, properties] = &stored.values;
    let mut properties: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(properties).unwrap_or_default();
    properties.insert("stored".into(), serde_json::json!({ "id": id, "timestamp": langflow_timestamp(stored.at) }));
    Message {
        text: text.clone(),
        sender: sender.clone(),
        sender_name: sender_name.clone(),
        session_id: session_id.clone(),
        files: serde_json::from_str(files).unwrap_or_default(),
        properties: serde_json::Value::Object(properties).to_string(),
    }
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
    use super::super::log::FOLD_EVERY;
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

    /// A guest appending the same large message in a loop, never waiting
    /// for it to be stored, fills the writer's queue up to its cap and is
    /// refused past it, instead of growing the host's memory without end.
    #[test]
    fn a_flood_of_appends_is_refused_past_the_queue_cap() {
        let store = MemoryStore::open_blocking("sqlite::memory:").expect("opens");
        // A writer that has not caught up yet: nothing drains the queue.
        let (sender, queue) = mpsc::unbounded_channel();
        let bytes = Arc::new(AtomicUsize::new(0));
        let behind = MemoryStore {
            pool: store.pool.clone(),
            writes: Writes::Queue(WriteQueue { sender, bytes: bytes.clone() }),
            url: store.url.clone(),
        };
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        let large = user_message(&"x".repeat(1 << 19));
        let mut pending = Vec::new();
        let refused = loop {
            match behind.enqueue(&scope, &large) {
                Ok(write) => pending.push(write),
                Err(error) => break error.to_string(),
            }
        };
        assert!(refused.contains("wait to be stored; try again later"), "{refused}");
        let each = bytes.load(Ordering::SeqCst) / pending.len();
        assert_eq!(pending.len(), MAX_QUEUED_BYTES / each, "queued up to the cap, not past it");
        // Once the writer runs, what was queued is stored and the queue
        // takes messages again.
        let pool = store.pool.clone();
        io::block_on(async {
            tokio::spawn(write_queued(pool, queue, bytes.clone()));
        });
        for write in pending {
            io::block_on(write.wait()).expect("stored");
        }
        assert_eq!(bytes.load(Ordering::SeqCst), 0);
        io::block_on(behind.append(&scope, &user_message("after"))).expect("room again");
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

    fn file_store(dir: &Path) -> MemoryStore {
        MemoryStore::open_blocking(&MemoryStore::sqlite_url_in(dir)).expect("opens")
    }

    /// The path of a migrated store's file in `dir`, with no store open.
    fn migrated(dir: &Path) -> String {
        io::block_on(file_store(dir).close());
        dir.join("memory.db").display().to_string()
    }

    fn texts(store: &MemoryStore, scope: &Scope) -> Vec<String> {
        io::block_on(store.history(scope, "s", 100)).expect("read").into_iter().map(|m| m.text).collect()
    }

    /// Rows of `memory_message` in the database itself.
    fn rows(store: &MemoryStore) -> i64 {
        let pool = store.pool.clone();
        io::block_on(io::run_on_io(async move {
            sqlx::query("SELECT count(*) FROM memory_message").fetch_one(&pool).await.and_then(|row| row.try_get(0))
        }))
        .expect("count")
    }

    fn log_bytes(dir: &Path) -> u64 {
        ["memory.db-log", "memory.db-log2"].iter().map(|f| dir.join(f).metadata().expect("a log file").len()).sum()
    }

    /// A message as `enqueue` makes it, with a fixed id.
    fn new_message(message_id: &str, text: &str) -> NewMessage {
        let values = [message_id, "t", "a", "s", "User", "User", text, "[]", "{}"].map(str::to_owned);
        NewMessage { values, at: 1_714_555_800_123 }
    }

    #[test]
    fn an_append_reads_back_the_same_before_and_after_it_is_folded() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = file_store(dir.path());
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        for text in ["one", "two", "three"] {
            let pending = store.enqueue(&scope, &user_message(text)).expect("stored");
            assert!(matches!(pending.0, Pending::Stored), "stored once it is in the log");
        }
        let before = io::block_on(store.history(&scope, "s", 2)).expect("read");
        let deadline = std::time::Instant::now() + 10 * FOLD_EVERY;
        while rows(&store) < 3 || log_bytes(dir.path()) > 0 {
            assert!(std::time::Instant::now() < deadline, "the log was never folded");
            std::thread::sleep(FOLD_EVERY / 10);
        }
        let after = io::block_on(store.history(&scope, "s", 2)).expect("read");
        assert_eq!(format!("{before:?}"), format!("{after:?}"), "the same messages, ids and times");
        assert_eq!(after.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["two", "three"]);
        io::block_on(store.close());
    }

    /// A process killed between a fold and the next leaves the messages in
    /// the log; the next open stores them. A fold that committed before
    /// the kill but had not emptied its file stores nothing twice. More
    /// messages than one insert statement takes: the second replay has a
    /// statement of repeated rows only, one of repeated and new rows, and
    /// new rows one by one.
    #[test]
    fn what_the_log_held_when_the_process_ended_is_stored_at_the_next_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = migrated(dir.path());
        let killed = |count: usize| {
            // A log with no folder: what a killed process left.
            let log = AppendLog::open(&database, MAX_UNFOLDED, |_| Ok(1)).expect("log opens");
            for n in 0..count {
                log.append(new_message(&format!("m{n}"), &format!("text {n}"))).expect("appended");
            }
        };
        // The last 100, what `texts` reads.
        let last = |count: usize| (count - 100..count).map(|n| format!("text {n}")).collect::<Vec<_>>();
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        let first = 2 * fold::ROWS_PER_INSERT + 5;
        killed(first);
        let store = file_store(dir.path());
        assert_eq!(texts(&store, &scope), last(first));
        assert_eq!((rows(&store), log_bytes(dir.path())), (first as i64, 0), "in the database, and the log emptied");
        io::block_on(store.close());

        // The same messages again, and new ones after them.
        let second = first + fold::ROWS_PER_INSERT;
        killed(second);
        let store = file_store(dir.path());
        assert_eq!(rows(&store), second as i64, "each stored once");
        assert_eq!(texts(&store, &scope), last(second));
        // New appends take ids after the replayed ones.
        io::block_on(store.append(&scope, &user_message("next"))).expect("stored");
        assert_eq!(texts(&store, &scope).last().map(String::as_str), Some("next"));
        io::block_on(store.close());
    }

    #[test]
    fn a_second_store_of_the_same_file_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let first = file_store(dir.path());
        let error = MemoryStore::open_blocking(&MemoryStore::sqlite_url_in(dir.path())).expect_err("locked");
        assert!(error.to_string().contains("another sandflow process"), "{error}");
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        io::block_on(first.append(&scope, &user_message("kept"))).expect("stored");
        // Dropping the last clone closes it too.
        drop(first);
        let second = file_store(dir.path());
        assert_eq!(texts(&second, &scope), ["kept"]);
        io::block_on(second.close());
    }

    #[test]
    fn appends_are_refused_while_the_log_is_far_behind_and_none_is_lost() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = migrated(dir.path());
        // No folder: the database never catches up.
        let log = AppendLog::open(&database, 1_000, |_| Ok(1)).expect("log opens");
        let mut appended = 0;
        let error = loop {
            match log.append(new_message(&format!("m{appended}"), "some text")) {
                Ok(()) => appended += 1,
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("behind") && error.to_string().contains("try again later"), "{error}");
        assert!(appended > 5, "{appended} appended first");
        assert_eq!(log.recent("t", "a", "s", 100).len(), appended, "every acknowledged append, no more");
        drop(log);
        let store = file_store(dir.path());
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        assert_eq!(texts(&store, &scope).len(), appended);
        io::block_on(store.close());
    }

    /// How often the WAL of the store in `dir` started over: its header's
    /// checkpoint sequence number.
    fn wal_restarts(dir: &Path) -> u32 {
        let header = std::fs::read(dir.join("memory.db-wal")).expect("a WAL");
        u32::from_be_bytes(header[12..16].try_into().expect("a WAL header"))
    }

    /// The folder checkpoints after each fold, so under appends that never
    /// stop the WAL still starts over (it grew without end when a
    /// background checkpoint raced a writer that never paused).
    #[test]
    fn the_wal_starts_over_while_appends_go_on() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = file_store(dir.path());
        let scope = Scope { tenant: "t".into(), agent: "a".into() };
        io::block_on(store.append(&scope, &user_message("first"))).expect("stored");
        let deadline = std::time::Instant::now() + 10 * FOLD_EVERY;
        while !dir.path().join("memory.db-wal").exists() || wal_restarts(dir.path()) == 0 {
            assert!(std::time::Instant::now() < deadline, "the WAL never started over");
            for _ in 0..100 {
                store.enqueue(&scope, &user_message("more")).expect("stored");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
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
