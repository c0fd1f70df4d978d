//! The durable outbox: append-only JSON-lines segments plus a delivery
//! cursor, in one directory the host owns.
//!
//! One process at a time: an open outbox holds an exclusive lock on its
//! directory (`flock` on `.lock`, which the kernel lets go when the
//! process ends, however it ends). A second host started on the same data
//! directory would otherwise append to the same segment, move the same
//! cursor, and at its open record the first host's runs in progress as
//! interrupted, while they go on and finish.

use super::UsageRecord;
use super::in_progress::{InProgress, Journal, interrupted_runs};
use super::lines::LineFile;
use super::set_aside;
use super::sink::{Sink, SinkError};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 8 << 20;
/// Longest a record waits in the page cache before it is synced to disk.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Most records per delivered batch.
pub const BATCH: usize = 1_000;
/// The file, in the outbox's directory, an open outbox holds locked.
const LOCK: &str = ".lock";
/// Most bytes of records waiting for the sink before the host takes no
/// more runs ([`Outbox::is_full`]), by default: about three million runs.
pub const MAX_BACKLOG_BYTES: u64 = 1 << 30;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why the outbox could not take or read a record.
#[derive(Debug, thiserror::Error)]
#[error("usage outbox {path}: {error}")]
pub struct OutboxError {
    path: PathBuf,
    // Said in the message, not as a source: printed with its causes, the
    // error would say it twice.
    error: std::io::Error,
}

/// Takes the directory's lock, or says which process must stop first.
fn lock(dir: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "another sandflow process has this usage outbox open; stop it, or give each host its own data \
             directory (SANDFLOW_DATA_DIR)",
        )),
        Err(error) => Err(std::io::Error::new(
            std::io::Error::from(error).kind(),
            format!("cannot lock {LOCK} ({error}): the data directory must be on a file system that supports flock"),
        )),
    }
}

/// Where delivery stands: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    segment: u64,
    offset: u64,
}

struct Writer {
    file: LineFile,
    segment: u64,
}

/// The outbox of one host.
pub struct Outbox {
    dir: PathBuf,
    writer: Mutex<Writer>,
    appended: Notify,
    journal: Arc<Journal>,
    /// Bytes of records not yet delivered.
    backlog: AtomicU64,
    max_backlog: u64,
    /// Held while [`REJECTED`](super::REJECTED) is written.
    set_aside: tokio::sync::Mutex<()>,
    /// Locked while the outbox is open (see the module's docs).
    _lock: File,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`. A record torn by a crash in
    /// the middle of its write (never acknowledged to anyone) is cut off.
    ///
    /// Runs the last process was killed in the middle of (see
    /// [`super::in_progress`]) get their records, with outcome
    /// [`super::INTERRUPTED`], before anything else is appended.
    ///
    /// New records go to a new segment. After a power loss the saved
    /// delivery cursor can point past what the disk kept of the last
    /// segment (records sent from the page cache, then lost), or name a
    /// segment whose creation was lost; records written there again would
    /// be passed over.
    pub fn open(dir: &Path) -> Result<Self, OutboxError> {
        Self::open_with_backlog(dir, MAX_BACKLOG_BYTES)
    }

    /// Like [`Outbox::open`], full once `max_backlog` bytes of records
    /// wait for the sink.
    pub fn open_with_backlog(dir: &Path, max_backlog: u64) -> Result<Self, OutboxError> {
        let err = |error| OutboxError { path: dir.to_path_buf(), error };
        std::fs::create_dir_all(dir).map_err(err)?;
        let lock = lock(dir).map_err(err)?;
        let last = segments(dir).map_err(err)?.last().copied();
        if let Some(last) = last {
            let path = segment_path(dir, last);
            let mut file = OpenOptions::new().read(true).write(true).open(&path).map_err(err)?;
            cut_torn_tail(&mut file, &path).map_err(err)?;
        }
        let segment = last.max(read_cursor(dir).map(|c| c.segment)).map_or(1, |newest| newest + 1);
        let file =
            OpenOptions::new().create(true).read(true).append(true).open(segment_path(dir, segment)).map_err(err)?;
        let writer = Writer { file: LineFile::new(file, 0), segment };
        let (interrupted, journal_files) = interrupted_runs(dir).map_err(err)?;
        let journal = Arc::new(Journal::create(dir).map_err(err)?);
        let outbox = Self {
            dir: dir.to_path_buf(),
            writer: Mutex::new(writer),
            appended: Notify::new(),
            journal,
            backlog: AtomicU64::new(0),
            max_backlog,
            set_aside: tokio::sync::Mutex::new(()),
            _lock: lock,
        };
        outbox.count_backlog(outbox.cursor()).map_err(err)?;
        for record in &interrupted {
            tracing::warn!(run_id = %record.idempotency_key, tenant = %record.tenant, "recorded a run the host was stopped in");
            outbox.append(record)?;
        }
        // On disk before the journal that held them is gone. Should the
        // process die in between, the next open records them again under
        // the same keys, which the ledger counts once.
        outbox.sync().map_err(err)?;
        for path in journal_files {
            if let Err(error) = std::fs::remove_file(&path) {
                // The next open records its runs again, under the same keys.
                tracing::error!(%error, path = %path.display(), "cannot delete a file of the runs journal");
            }
        }
        Ok(outbox)
    }

    /// The run `record` describes (its outcome not known yet) starts: it
    /// is recorded even if the process ends before it does, once it is
    /// journaled (see [`InProgress::journal`]). It ends with
    /// [`Outbox::finish`].
    pub fn start(&self, record: &UsageRecord) -> InProgress {
        self.journal.run(record)
    }

    /// Appends the finished run's record, and ends its place in the
    /// journal of runs in progress. Should the append fail, the journal
    /// keeps the run, to be recorded as interrupted when the outbox next
    /// opens.
    pub fn finish(&self, run: &InProgress, record: &UsageRecord) -> Result<(), OutboxError> {
        self.append(record)?;
        run.end();
        Ok(())
    }

    /// Appends one record. When this returns, killing the process loses
    /// nothing: the line is in the kernel's hands.
    pub fn append(&self, record: &UsageRecord) -> Result<(), OutboxError> {
        let mut line = serde_json::to_vec(record).expect("a usage record always serializes");
        line.push(b'\n');
        let mut w = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if w.file.len() > 0 && w.file.len() + line.len() as u64 > SEGMENT_BYTES {
            let next = w.segment + 1;
            let path = segment_path(&self.dir, next);
            let err = |error| OutboxError { path: path.clone(), error };
            w.file.file().sync_data().map_err(err)?;
            let file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(err)?;
            w.file = LineFile::new(file, 0);
            w.segment = next;
        }
        w.file.append(&line).map_err(|error| OutboxError { path: segment_path(&self.dir, w.segment), error })?;
        self.backlog.fetch_add(line.len() as u64, Ordering::Relaxed);
        drop(w);
        self.appended.notify_one();
        Ok(())
    }

    /// Whether so many records wait for the sink (it has been down, or
    /// refusing, for long) that the host should take no more runs until it
    /// takes them: past that, the records would fill the disk.
    pub fn is_full(&self) -> bool {
        self.backlog() >= self.max_backlog
    }

    /// Bytes of records not yet delivered.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Counts the bytes from `cursor` to the end of the newest segment,
    /// under the writer's lock so no append is counted twice or missed.
    fn count_backlog(&self, cursor: Cursor) -> std::io::Result<()> {
        let _appends = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut bytes = 0u64;
        for segment in segments(&self.dir)?.into_iter().filter(|&s| s >= cursor.segment) {
            let len = std::fs::metadata(segment_path(&self.dir, segment)).map_or(0, |m| m.len());
            bytes += if segment == cursor.segment { len.saturating_sub(cursor.offset) } else { len };
        }
        self.backlog.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs the current segment to disk. Appends go on meanwhile: the
    /// sync holds a handle of its own, not the writer's lock, for as long
    /// as the disk takes.
    pub fn sync(&self) -> std::io::Result<()> {
        let file = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).file.file().try_clone()?;
        file.sync_data()
    }

    /// Delivers everything pending to `sink`, batch by batch. Returns how
    /// many records were delivered or set aside; stops at the first
    /// refusal that is not the records' fault.
    pub async fn deliver_pending(&self, sink: &impl Sink) -> Result<usize, SinkError> {
        let local = |e: std::io::Error| SinkError::Unavailable(e.to_string());
        let mut delivered = 0;
        loop {
            // Appends made while a backlog drains are on disk within a
            // batch's time, not only once it has drained.
            if delivered > 0 {
                self.sync().map_err(local)?;
            }
            let cursor = self.cursor();
            let (batch, next) = self.read_batch(cursor).map_err(local)?;
            if batch.is_empty() {
                if next != cursor {
                    self.save_cursor(next).map_err(local)?;
                    continue;
                }
                return Ok(delivered);
            }
            self.deliver_or_set_aside(sink, &batch).await?;
            self.save_cursor(next).map_err(local)?;
            delivered += batch.len();
        }
    }

    /// Delivers `batch`, setting aside in [`REJECTED`](super::REJECTED) the records the
    /// sink rejects, so one bad record does not hold up every record
    /// behind it.
    async fn deliver_or_set_aside(&self, sink: &impl Sink, batch: &[UsageRecord]) -> Result<(), SinkError> {
        let rejected = set_aside::deliver_sorting(sink, batch).await?;
        if rejected.is_empty() {
            return Ok(());
        }
        let _file = self.set_aside.lock().await;
        set_aside::append(&self.dir, &rejected).map_err(|e| SinkError::Unavailable(e.to_string()))
    }

    /// Offers the records set aside in [`REJECTED`](super::REJECTED) to `sink` once more:
    /// it may take them now that its operator has fixed what it objected
    /// to. [`Outbox::deliver_forever`] does this once, when it starts, so
    /// restarting the host after such a fix is all it takes. Records the
    /// sink still rejects stay, with its new reason; a line that cannot
    /// be read stays as it is. Returns how many records the sink took.
    /// Nothing is lost if the sink stops answering partway, or the
    /// process dies: what was not settled stays in the file.
    pub async fn offer_rejected_again(&self, sink: &impl Sink) -> Result<usize, SinkError> {
        let _file = self.set_aside.lock().await;
        set_aside::offer_again(&self.dir, sink).await
    }

    /// Syncs and delivers until `shutdown`, retrying a refused batch with
    /// backoff. Run it as a task for the life of the host.
    ///
    /// The segment is synced every [`SYNC_INTERVAL`] whatever the sink
    /// does. Records are delivered as they are appended while the sink
    /// takes them; once it refuses, new appends do not hasten the retry,
    /// which waits out its backoff (doubling to [`MAX_BACKOFF`]), so a
    /// busy host does not hammer a struggling control plane. Before its
    /// first delivery it offers what was set aside once more
    /// ([`Outbox::offer_rejected_again`]), and should that fail, again on
    /// a backoff of its own until the sink has answered for every record.
    pub async fn deliver_forever(&self, sink: impl Sink, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut offer_at = Some(tokio::time::Instant::now());
        let mut offer_backoff = Duration::from_millis(100);
        loop {
            if let Err(error) = self.sync() {
                tracing::warn!(%error, "usage outbox sync failed");
            }
            if retry_at.is_none_or(|at| tokio::time::Instant::now() >= at) {
                // A sink or disk that fails the offer must not hold up the
                // records still to deliver: it is tried again on its own
                // backoff.
                if offer_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                    match self.offer_rejected_again(&sink).await {
                        Ok(_) => offer_at = None,
                        Err(error) => {
                            tracing::warn!(%error, retry_in = ?offer_backoff, "set-aside usage records not offered again");
                            offer_at = Some(tokio::time::Instant::now() + offer_backoff);
                            offer_backoff = (offer_backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
                match self.deliver_pending(&sink).await {
                    Ok(_) => {
                        backoff = Duration::from_millis(100);
                        retry_at = None;
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?backoff, "usage delivery failed");
                        retry_at = Some(tokio::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let backing_off = retry_at.is_some();
            let wait = retry_at.map_or(SYNC_INTERVAL, |at| {
                at.saturating_duration_since(tokio::time::Instant::now()).min(SYNC_INTERVAL)
            });
            tokio::select! {
                () = &mut shutdown => {
                    let _ = self.sync();
                    return;
                }
                () = tokio::time::sleep(wait) => {}
                () = self.appended.notified(), if !backing_off => {}
            }
        }
    }

    fn cursor(&self) -> Cursor {
        let first = segments(&self.dir).ok().and_then(|s| s.first().copied()).unwrap_or(1);
        read_cursor(&self.dir).filter(|c| c.segment >= first).unwrap_or(Cursor { segment: first, offset: 0 })
    }

    fn save_cursor(&self, cursor: Cursor) -> std::io::Result<()> {
        let tmp = self.dir.join("cursor.tmp");
        std::fs::write(&tmp, format!("{} {}\n", cursor.segment, cursor.offset))?;
        std::fs::rename(&tmp, self.dir.join("cursor"))?;
        // Segments wholly before the cursor are delivered: drop them.
        for segment in segments(&self.dir)?.into_iter().filter(|&s| s < cursor.segment) {
            let _ = std::fs::remove_file(segment_path(&self.dir, segment));
        }
        self.count_backlog(cursor)
    }

    /// Up to [`BATCH`] complete records from `cursor`, and the cursor after
    /// them. At the end of a closed segment, the cursor moves to the next.
    fn read_batch(&self, cursor: Cursor) -> std::io::Result<(Vec<UsageRecord>, Cursor)> {
        let current = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).segment;
        let path = segment_path(&self.dir, cursor.segment);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && cursor.segment < current => {
                return Ok((Vec::new(), Cursor { segment: cursor.segment + 1, offset: 0 }));
            }
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(cursor.offset))?;
        let mut reader = BufReader::new(file);
        let mut batch = Vec::new();
        let mut offset = cursor.offset;
        let mut line = Vec::new();
        while batch.len() < BATCH {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // end of file, or a line still being written
            }
            offset += n as u64;
            match serde_json::from_slice(&line) {
                Ok(record) => batch.push(record),
                Err(error) => tracing::error!(%error, segment = cursor.segment, "unreadable usage record skipped"),
            }
        }
        let next = if batch.is_empty() && cursor.segment < current {
            Cursor { segment: cursor.segment + 1, offset: 0 }
        } else {
            Cursor { segment: cursor.segment, offset }
        };
        Ok((batch, next))
    }
}

/// The saved delivery cursor, if there is one that reads.
fn read_cursor(dir: &Path) -> Option<Cursor> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    Some(Cursor { segment: parts.next()?.ok()?, offset: parts.next()?.ok()? })
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("usage-{segment:012}.jsonl"))
}

/// Segment numbers present in `dir`, ascending.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    numbered_files(dir, "usage-")
}

/// The numbers of `dir`'s files named `<prefix><number>.jsonl`, ascending.
pub(super) fn numbered_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<u64>> {
    let mut found: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix(prefix)?.strip_suffix(".jsonl")?.parse().ok()
        })
        .collect();
    found.sort_unstable();
    Ok(found)
}

/// Truncates `file` after its last newline; returns the resulting length.
fn cut_torn_tail(file: &mut File, path: &Path) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut contents = Vec::with_capacity(len as usize);
    File::open(path)?.read_to_end(&mut contents)?;
    let keep = contents.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) as u64;
    if keep < len {
        tracing::warn!(path = %path.display(), dropped = len - keep, "cut a usage record torn by a crash");
        file.set_len(keep)?;
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{GENERATION_BYTES, INTERRUPTED};

    fn record(key: &str) -> UsageRecord {
        UsageRecord {
            idempotency_key: key.into(),
            tenant: "acme".into(),
            agent: "echo".into(),
            subscription: None,
            flow_version: "sha256:00".into(),
            fuel: 1,
            tokens_in: 0,
            tokens_out: 0,
            wall_micros: 1,
            bytes_in: 0,
            bytes_out: 0,
            http_bytes: 0,
            outcome: "completed".into(),
            started_at_ms: 1_700_000_000_000,
            key_id: None,
        }
    }

    /// A write that fails halfway (a full disk) is refused, and the
    /// records around it are read back whole: the next one is not glued
    /// to what the failed write left.
    #[test]
    fn a_failed_write_leaves_the_records_around_it_whole() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let outbox = Outbox::open(dir.path()).expect("opens");
        outbox.append(&record("one")).expect("appended");
        crate::short_write::fail_next_after(20);
        let refused = outbox.append(&record("two")).expect_err("the disk is full");
        assert!(refused.to_string().contains("no space left"), "{refused}");
        outbox.append(&record("three")).expect("appended");
        let (batch, _) = outbox.read_batch(outbox.cursor()).expect("reads");
        let keys: Vec<_> = batch.iter().map(|r| r.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["one", "three"]);
    }

    /// Every record from the cursor on, over all segments.
    fn all_records(outbox: &Outbox) -> Vec<UsageRecord> {
        let (mut cursor, mut records) = (outbox.cursor(), Vec::new());
        loop {
            let (batch, next) = outbox.read_batch(cursor).expect("reads");
            records.extend(batch);
            if next == cursor {
                return records;
            }
            cursor = next;
        }
    }

    fn keys(records: &[UsageRecord]) -> Vec<&str> {
        records.iter().map(|r| r.idempotency_key.as_str()).collect()
    }

    #[test]
    fn one_process_at_a_time() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let outbox = Outbox::open(dir.path()).expect("opens");
        let refused = Outbox::open(dir.path()).err().expect("a second open is refused").to_string();
        assert!(refused.contains("another sandflow process") && refused.contains("SANDFLOW_DATA_DIR"), "{refused}");
        drop(outbox);
        Outbox::open(dir.path()).expect("opens once the first is closed");
    }

    #[test]
    fn a_run_the_process_ended_in_is_recorded_once_as_interrupted() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let outbox = Outbox::open(dir.path()).expect("opens");
            let left = outbox.start(&record("left"));
            left.checkpoint(700, crate::TokenCount { input: 5, output: 3 }, 40);
            let done = outbox.start(&record("done"));
            done.journal();
            outbox.finish(&done, &record("done")).expect("recorded");
            // Never journaled: it had not computed for long nor called out.
            let _brief = outbox.start(&record("brief"));
            // The process ends here: `left` never finishes.
        }
        let outbox = Outbox::open(dir.path()).expect("reopens");
        let records = all_records(&outbox);
        assert_eq!(keys(&records), ["done", "left"]);
        assert_eq!(records[0].outcome, "completed");
        let left = &records[1];
        assert_eq!(left.outcome, INTERRUPTED);
        let used = (left.fuel, left.tokens_in, left.tokens_out, left.http_bytes);
        assert_eq!(used, (700, 5, 3, 40), "used by its last checkpoint");
        drop(outbox);
        let outbox = Outbox::open(dir.path()).expect("reopens again");
        assert_eq!(keys(&all_records(&outbox)), ["done", "left"], "recorded once, not at every open");
    }

    #[test]
    fn a_record_that_could_not_be_written_is_kept_as_interrupted() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let outbox = Outbox::open(dir.path()).expect("opens");
            let run = outbox.start(&record("unlucky"));
            run.journal();
            crate::short_write::fail_next_after(10);
            outbox.finish(&run, &record("unlucky")).expect_err("the disk is full");
        }
        let outbox = Outbox::open(dir.path()).expect("reopens");
        let records = all_records(&outbox);
        assert_eq!(keys(&records), ["unlucky"]);
        assert_eq!(records[0].outcome, INTERRUPTED);
    }

    #[test]
    fn the_journal_holds_only_runs_in_progress() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let outbox = Outbox::open(dir.path()).expect("opens");
        let line = serde_json::to_vec(&record("k")).expect("serializes").len() as u64;
        let runs = 3 * GENERATION_BYTES / line;
        let open = outbox.start(&record("still running"));
        open.journal();
        for n in 0..runs {
            let run = outbox.start(&record(&format!("run {n}")));
            run.journal();
            outbox.finish(&run, &record(&format!("run {n}"))).expect("recorded");
        }
        // The runs filled three generations or more.
        let journal_files = || numbered_files(dir.path(), "running-").expect("lists");
        let files = journal_files();
        assert!(files.len() <= 2 && files[0] == 1, "the first generation, where a run is open, and the current one");
        outbox.finish(&open, &record("still running")).expect("recorded");
        assert!(journal_files().len() <= 1, "at most the current generation");
    }

    /// A sink that takes everything.
    struct Takes;

    impl Sink for Takes {
        async fn deliver(&self, _batch: &[UsageRecord]) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_backlog_past_its_limit_fills_the_outbox_until_delivered() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let line = serde_json::to_vec(&record("k")).expect("serializes").len() as u64 + 1;
        {
            let outbox = Outbox::open_with_backlog(dir.path(), 3 * line).expect("opens");
            outbox.append(&record("one")).expect("appended");
            outbox.append(&record("two")).expect("appended");
            assert!(!outbox.is_full(), "two records wait");
            outbox.append(&record("six")).expect("appended");
            assert!(outbox.is_full(), "three records wait: {} bytes", outbox.backlog());
        }
        // Counted again from the disk after a restart.
        let outbox = Outbox::open_with_backlog(dir.path(), 3 * line).expect("reopens");
        assert!(outbox.is_full());
        assert_eq!(outbox.deliver_pending(&Takes).await.expect("delivers"), 3);
        assert_eq!(outbox.backlog(), 0, "delivered records wait no more");
        assert!(!outbox.is_full());
    }
}
