//! The append log in front of a SQLite memory store.
//!
//! An append is written to the end of a log file (one `pwrite`, no
//! `fsync`) and kept in memory, and that is when it counts as stored: it
//! survives the process being killed, as a commit with SQLite's
//! `synchronous = NORMAL` does. A thread of the store's, the folder
//! (`super::fold`), moves what the log holds into SQLite in one transaction
//! every [`FOLD_EVERY`] and empties the log.
//!
//! Storing each append in SQLite at once made every commit of a few
//! messages rewrite three or four whole pages (the table's last leaf and
//! its two indexes'), some 100–160 MB a second of WAL under the HTTP
//! benchmark, for the kernel to write back while runs waited for their
//! cores, and a writer thread's CPU per batch. One fold of half a second's
//! messages writes each page once (BENCHMARKS.md, "Runtime: HTTP").
//!
//! Two files take turns: appends go to the active one; the folder seals it
//! (appends move to the other, empty file), folds what the sealed one
//! holds, and truncates it once SQLite has it durably. Until then a history
//! read merges what the log holds for its session with what SQLite holds
//! (see [`AppendLog::recent`]); ids, given here in append order, tell the
//! two apart where a fold has just landed. At open, whatever the files
//! still hold (the process ended before a fold) goes into SQLite first
//! (the `replay` of [`AppendLog::open`]).
//!
//! Records: `[length: u32][crc32 of the payload: u32][payload]`, little
//! endian; the payload is the id, the time and the row's texts, each text
//! as `[length: u32][bytes]`. A record cut short by a crash was never
//! acknowledged, so reading stops at the first record that does not check.

use super::store::{MemoryError, NewMessage};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the folder moves the log into SQLite.
pub(super) const FOLD_EVERY: Duration = Duration::from_millis(500);
/// An active file this long is sealed and folded without waiting for
/// [`FOLD_EVERY`].
const FOLD_AT: u64 = 16 << 20;
/// Most bytes of log waiting for SQLite; beyond it, appends are refused
/// (SQLite is failing or far behind).
pub(super) const MAX_UNFOLDED: u64 = 256 << 20;
/// How long opening waits for another store of the same file to let go.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// A message with the id the log gave it.
#[derive(Debug)]
pub(super) struct Logged {
    /// The row's `id`: larger than every id appended before.
    pub id: i64,
    pub message: NewMessage,
}

/// The log's messages of one file, and where each session's are.
#[derive(Debug, Default)]
pub(super) struct Segment {
    pub messages: Vec<Arc<Logged>>,
    /// Positions in `messages`, by the hash of tenant, agent and session.
    sessions: HashMap<u64, Vec<usize>>,
    /// Bytes of the file.
    bytes: u64,
}

/// The log of one SQLite memory store; see the module docs.
#[derive(Debug)]
pub(super) struct AppendLog {
    /// The two files that take turns.
    files: [File; 2],
    state: Mutex<State>,
    /// Wakes the folder: the active file is long, or the store closed.
    wake: Condvar,
    hasher: RandomState,
    /// Appends are refused beyond this many bytes of unfolded log.
    max_unfolded: u64,
    /// The first file's path, naming the log in messages.
    path: PathBuf,
}

#[derive(Debug, Default)]
struct State {
    /// Which file takes appends.
    active_file: usize,
    active: Segment,
    /// Being folded: the other file's messages.
    sealed: Option<Arc<Segment>>,
    next_id: i64,
    /// A failed write may have left part of a record past the active
    /// file's end, and cutting it off failed too: the next append tries
    /// again before it writes.
    torn: bool,
    closed: bool,
}

/// What the folder does next.
#[derive(Debug)]
pub(super) enum Next {
    /// Put these messages (one file's, sealed) into SQLite, then call
    /// [`AppendLog::folded`].
    Fold(Arc<Segment>),
    /// Nothing came in.
    Idle,
    /// The store is closed and nothing is left.
    Done,
}

impl AppendLog {
    /// Opens (creating) the log files of the SQLite file `database`, locked
    /// against any other store of it. `replay` is given the messages they
    /// still hold (the process ended before a fold), oldest first, puts
    /// them into SQLite and answers the id the next append gets; then the
    /// files are emptied.
    pub fn open(
        database: &str,
        max_unfolded: u64,
        replay: impl FnOnce(&[Logged]) -> Result<i64, MemoryError>,
    ) -> Result<Self, MemoryError> {
        let paths = ["log", "log2"].map(|suffix| PathBuf::from(format!("{database}-{suffix}")));
        let files = [open_locked(&paths[0])?, open_locked(&paths[1])?];
        let mut left = Vec::new();
        for (file, path) in files.iter().zip(&paths) {
            left.extend(read_records(file, path)?);
        }
        left.sort_by_key(|logged| logged.id);
        let next_id = replay(&left)?;
        let log = Self {
            files,
            state: Mutex::new(State { next_id, ..State::default() }),
            wake: Condvar::new(),
            hasher: RandomState::new(),
            max_unfolded,
            path: paths[0].clone(),
        };
        for file in &log.files {
            file.set_len(0).map_err(|e| log.io_error("cannot empty", &e))?;
        }
        Ok(log)
    }

    /// Writes `message` to the log: once this returns, it is stored.
    pub fn append(&self, message: NewMessage) -> Result<(), MemoryError> {
        let key = self.session_key(&message.values[1], &message.values[2], &message.values[3]);
        let mut record = encode(&message);
        let mut state = self.lock();
        if state.closed {
            return Err(MemoryError::Write("the memory store is closed".into()));
        }
        let unfolded = state.active.bytes + state.sealed.as_ref().map_or(0, |s| s.bytes);
        if unfolded >= self.max_unfolded {
            return Err(MemoryError::Write(format!(
                "the memory store is behind: {} KiB of chat history wait to be written to its database; \
                 try again later",
                unfolded >> 10
            )));
        }
        let file = &self.files[state.active_file];
        if state.torn {
            // What a failed write left must go before anything follows it.
            file.set_len(state.active.bytes).map_err(|e| self.io_error("cannot repair", &e))?;
            state.torn = false;
        }
        let id = state.next_id;
        seal_record(&mut record, id);
        // At the file's end as this log knows it.
        if let Err(error) = write_at(file, &record, state.active.bytes) {
            // A write that failed halfway left part of a record past that
            // end. A shorter record written over it would leave the rest
            // (text a guest chose) after a whole record, for the next open
            // to read as records of their own: it is cut off first.
            state.torn = file.set_len(state.active.bytes).is_err();
            return Err(self.io_error("cannot write to", &error));
        }
        state.next_id += 1;
        let segment = &mut state.active;
        segment.bytes += record.len() as u64;
        segment.sessions.entry(key).or_default().push(segment.messages.len());
        segment.messages.push(Arc::new(Logged { id, message }));
        if segment.bytes >= FOLD_AT {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The last `limit` messages the log holds of a session, oldest first.
    /// Some may be in SQLite already (a fold just landed): callers merge by
    /// id.
    pub fn recent(&self, tenant: &str, agent: &str, session: &str, limit: usize) -> Vec<Arc<Logged>> {
        let key = self.session_key(tenant, agent, session);
        let state = self.lock();
        // Newest first: the active file's, then the sealed one's.
        let segments = [Some(&state.active), state.sealed.as_deref()].into_iter().flatten();
        let mut found: Vec<Arc<Logged>> = segments
            .flat_map(|segment| {
                let at = segment.sessions.get(&key).map_or(&[][..], Vec::as_slice);
                at.iter().rev().map(|&at| &segment.messages[at])
            })
            .filter(|logged| {
                let values = &logged.message.values;
                (values[1].as_str(), values[2].as_str(), values[3].as_str()) == (tenant, agent, session)
            })
            .take(limit)
            .cloned()
            .collect();
        found.reverse();
        found
    }

    /// Waits until it is time to fold (every [`FOLD_EVERY`], sooner when
    /// the active file is long or the store closes), then seals the active
    /// file, or hands over again the sealed one a failed fold left (not
    /// sooner than [`FOLD_EVERY`] after, however long the log grows).
    pub fn next_to_fold(&self) -> Next {
        let deadline = Instant::now() + FOLD_EVERY;
        let mut state = self.lock();
        while !state.closed && (state.sealed.is_some() || state.active.bytes < FOLD_AT) {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else { break };
            state = self.wake.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
        if state.sealed.is_none() && !state.active.messages.is_empty() {
            state.sealed = Some(Arc::new(std::mem::take(&mut state.active)));
            state.active_file ^= 1;
            // A torn end stays with the sealed file, which nothing writes
            // to again before it is emptied; the new active file is empty.
            state.torn = false;
        }
        match &state.sealed {
            Some(segment) => Next::Fold(segment.clone()),
            None if state.closed => Next::Done,
            None => Next::Idle,
        }
    }

    /// The sealed file's messages are in SQLite, durably: empties the file,
    /// and history reads no longer look at it.
    pub fn folded(&self) -> Result<(), MemoryError> {
        let sealed_file = self.lock().active_file ^ 1;
        // Outside the lock: nothing writes to the sealed file, and it
        // becomes the active one only at the next seal, after this.
        self.files[sealed_file].set_len(0).map_err(|e| self.io_error("cannot empty", &e))?;
        self.lock().sealed = None;
        Ok(())
    }

    /// Refuses appends from now on; the folder folds what is left and ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Lets another store open the files: called once the folder has
    /// ended, after [`Self::close`].
    pub fn unlock(&self) {
        for file in &self.files {
            if let Err(error) = file.unlock() {
                tracing::warn!(%error, path = %self.path.display(), "memory store: cannot unlock the log");
            }
        }
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn session_key(&self, tenant: &str, agent: &str, session: &str) -> u64 {
        self.hasher.hash_one((tenant, agent, session))
    }

    fn io_error(&self, what: &str, error: &std::io::Error) -> MemoryError {
        MemoryError::Write(format!("{what} the memory store's log {}: {error}", self.path.display()))
    }
}

/// Writes `bytes` at `offset` of `file` (tests make it fail halfway:
/// [`crate::short_write`]).
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    if let Some((part, error)) = crate::short_write::injected(bytes) {
        file.write_all_at(part, offset)?;
        return Err(error);
    }
    file.write_all_at(bytes, offset)
}

/// Opens (creating) `path` and takes its lock, waiting up to
/// [`LOCK_WAIT`] for a store that is closing.
fn open_locked(path: &Path) -> Result<File, MemoryError> {
    let failed = |e: std::io::Error| MemoryError::Write(format!("cannot open {}: {e}", path.display()));
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(failed)?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(MemoryError::Write(format!(
                    "{} is locked: another sandflow process (or store) has this memory database open; \
                     give each process a data directory of its own",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
}

/// The records of `file` up to the first that does not check. A file's
/// ids run on by one (appends between two emptyings of a file take the
/// next id each), so a record that checks but breaks the run is not one
/// this log wrote there: it ends the reading too.
fn read_records(file: &File, path: &Path) -> Result<Vec<Logged>, MemoryError> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut bytes)
        .map_err(|e| MemoryError::Write(format!("cannot read {}: {e}", path.display())))?;
    let mut records: Vec<Logged> = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let follows = |logged: &Logged| records.last().is_none_or(|last| last.id.checked_add(1) == Some(logged.id));
        match decode(rest).filter(|(logged, _)| follows(logged)) {
            Some((logged, used)) => {
                records.push(logged);
                rest = &rest[used..];
            }
            None => {
                tracing::warn!(
                    path = %path.display(),
                    bytes = rest.len(),
                    "memory store: the log ends in a record cut short (never acknowledged); dropped"
                );
                break;
            }
        }
    }
    Ok(records)
}

/// Header: payload length and checksum.
const HEADER: usize = 8;
/// The id's place in a record.
const ID_AT: usize = HEADER;

/// A record of `message` with id 0; [`seal_record`] sets its id.
fn encode(message: &NewMessage) -> Vec<u8> {
    let texts: usize = message.values.iter().map(|v| 4 + v.len()).sum();
    let mut record = Vec::with_capacity(HEADER + 16 + texts);
    record.extend_from_slice(&[0; HEADER + 8]);
    record.extend_from_slice(&message.at.to_le_bytes());
    for value in &message.values {
        record.extend_from_slice(&text_length(value).to_le_bytes());
        record.extend_from_slice(value.as_bytes());
    }
    record
}

/// Sets the record's id, length and checksum.
fn seal_record(record: &mut [u8], id: i64) {
    record[ID_AT..ID_AT + 8].copy_from_slice(&id.to_le_bytes());
    let length = u32::try_from(record.len() - HEADER).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(&record[HEADER..]);
    record[..4].copy_from_slice(&length.to_le_bytes());
    record[4..HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Texts are bounded far below 4 GiB (`super::limits`).
fn text_length(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

/// The record at the start of `bytes` and its length, or `None` if it is
/// cut short or does not check.
fn decode(bytes: &[u8]) -> Option<(Logged, usize)> {
    let length = usize::try_from(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let crc = u32::from_le_bytes(bytes.get(4..HEADER)?.try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER.checked_add(length)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut reader = Reader(payload);
    let id = i64::from_le_bytes(reader.take(8)?.try_into().ok()?);
    let at = i64::from_le_bytes(reader.take(8)?.try_into().ok()?);
    let mut values: [String; super::store::TEXTS] = Default::default();
    for value in &mut values {
        let length = usize::try_from(u32::from_le_bytes(reader.take(4)?.try_into().ok()?)).ok()?;
        *value = String::from_utf8(reader.take(length)?.to_vec()).ok()?;
    }
    reader.0.is_empty().then_some((Logged { id, message: NewMessage { values, at } }, HEADER + length))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> NewMessage {
        let values = ["m", "t", "a", "s", "User", "User", text, "[]", "{}"].map(str::to_owned);
        NewMessage { values, at: 42 }
    }

    /// A database path in a new temporary directory (kept while the first
    /// value lives).
    fn temporary_database() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = dir.path().join("memory.db").display().to_string();
        (dir, database)
    }

    /// The ids, tenants and texts the next open of `database` replays.
    fn replayed(database: &str) -> Vec<(i64, String, String)> {
        let mut left = Vec::new();
        AppendLog::open(database, MAX_UNFOLDED, |logged| {
            left = logged.iter().map(|l| (l.id, l.message.values[1].clone(), l.message.values[6].clone())).collect();
            Ok(1)
        })
        .expect("reopens");
        left
    }

    /// A write that fails halfway (a full disk) leaves part of a record
    /// past the file's end. Were the next, shorter record written over its
    /// start, the rest would follow a whole record: here a record of
    /// another tenant's, with the id that comes next, hidden in the text
    /// (the store would refuse this text for its NUL characters; the log
    /// alone does not look). The failed write is cut off first, so the
    /// next open reads only what was acknowledged.
    #[test]
    fn a_failed_write_leaves_nothing_a_later_open_reads() {
        let (_dir, database) = temporary_database();
        let log = AppendLog::open(&database, MAX_UNFOLDED, |_| Ok(7)).expect("opens");
        log.append(message("one")).expect("appended");

        let short = message("ok");
        let short_length = encode(&short).len();
        // A record of ASCII bytes only (so it fits in a text): small
        // lengths and ids are, and some text gives a checksum that is.
        let forged = (0..)
            .map(|n| {
                let text = format!("forged {n}");
                let values = ["f", "another-tenant", "a", "s", "User", "User", &text, "[]", "{}"].map(str::to_owned);
                let mut record = encode(&NewMessage { values, at: 42 });
                seal_record(&mut record, 9);
                record
            })
            .find(|record| record.is_ascii())
            .expect("some checksum is ASCII");
        // Padding that puts the forged record where the short one ends.
        // Where a record's text begins: before the last two values ("[]", "{}").
        let text_at = encode(&message("")).len() - 2 * (4 + 2);
        let mut text = "p".repeat(short_length - text_at);
        text.push_str(std::str::from_utf8(&forged).expect("ASCII"));
        let long = message(&text);
        let long_length = encode(&long).len();

        crate::short_write::fail_next_after(long_length - 1);
        let refused = log.append(long).expect_err("the disk is full");
        assert!(refused.to_string().contains("no space left"), "{refused}");
        log.append(short).expect("appended");
        let texts: Vec<_> = log.recent("t", "a", "s", 10).iter().map(|l| l.message.values[6].clone()).collect();
        assert_eq!(texts, ["one", "ok"]);
        drop(log);
        let expected = [(7, "t", "one"), (8, "t", "ok")].map(|(id, t, x)| (id, t.to_owned(), x.to_owned()));
        assert_eq!(replayed(&database), expected);
    }

    /// A record that checks but whose id does not follow the one before
    /// was not written there by this log: reading stops at it.
    #[test]
    fn a_record_out_of_the_id_sequence_ends_the_reading() {
        let (_dir, database) = temporary_database();
        let mut bytes = Vec::new();
        for (id, text) in [(5, "five"), (6, "six"), (9, "nine"), (10, "ten")] {
            let mut record = encode(&message(text));
            seal_record(&mut record, id);
            bytes.extend_from_slice(&record);
        }
        std::fs::write(format!("{database}-log"), bytes).expect("written");
        let expected = [(5, "t", "five"), (6, "t", "six")].map(|(id, t, x)| (id, t.to_owned(), x.to_owned()));
        assert_eq!(replayed(&database), expected);
    }

    #[test]
    fn a_record_reads_back_as_written_and_a_changed_byte_fails_its_check() {
        let mut record = encode(&message("héllo, wörld"));
        seal_record(&mut record, 7);
        let (logged, used) = decode(&record).expect("decodes");
        assert_eq!((logged.id, logged.message.at, used), (7, 42, record.len()));
        assert_eq!(logged.message.values, message("héllo, wörld").values);
        let last = record.len() - 1;
        record[last] ^= 1;
        assert!(decode(&record).is_none());
        assert!(decode(&record[..HEADER]).is_none(), "a header alone");
    }

    /// A killed process may leave its last write half done: it was never
    /// acknowledged, and what came before it is read back whole.
    #[test]
    fn a_record_cut_short_ends_what_the_next_open_reads() {
        let (_dir, database) = temporary_database();
        let log = AppendLog::open(&database, MAX_UNFOLDED, |_| Ok(7)).expect("opens");
        log.append(message("one")).expect("appended");
        log.append(message("two")).expect("appended");
        let mut record = encode(&message("three"));
        seal_record(&mut record, 9);
        let end = log.lock().active.bytes;
        log.files[0].write_all_at(&record[..record.len() - 3], end).expect("written");
        assert_eq!(log.recent("t", "a", "s", 10).len(), 2);
        assert!(log.recent("t", "a", "other", 10).is_empty() && log.recent("x", "a", "s", 10).is_empty());
        drop(log);
        let expected = [(7, "t", "one"), (8, "t", "two")].map(|(id, t, x)| (id, t.to_owned(), x.to_owned()));
        assert_eq!(replayed(&database), expected);
    }

    /// While a sealed file is folded, reads see both files, newest last.
    #[test]
    fn reads_see_the_sealed_file_until_it_is_folded() {
        let (_dir, database) = temporary_database();
        let log = AppendLog::open(&database, MAX_UNFOLDED, |_| Ok(1)).expect("opens");
        log.append(message("one")).expect("appended");
        let texts = |log: &AppendLog| -> Vec<String> {
            log.recent("t", "a", "s", 10).iter().map(|l| l.message.values[6].clone()).collect()
        };
        // After FOLD_EVERY.
        let Next::Fold(sealed) = log.next_to_fold() else { panic!("something to fold") };
        assert_eq!(sealed.messages.len(), 1);
        log.append(message("two")).expect("appended");
        assert_eq!(texts(&log), ["one", "two"]);
        assert_eq!(log.recent("t", "a", "s", 1)[0].message.values[6], "two", "the newest");
        log.folded().expect("emptied");
        assert_eq!(texts(&log), ["two"]);
        assert_eq!(std::fs::metadata(format!("{database}-log")).expect("first file").len(), 0);
    }
}
