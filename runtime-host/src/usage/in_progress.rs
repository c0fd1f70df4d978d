//! The journal of runs in progress, so that a run the process is killed in
//! the middle of still has its usage record.
//!
//! A run's record goes to the outbox when the run ends. Before the run
//! first calls outside (a model, a web page, a database server), or once
//! it has computed for a slice of its lane and given the lane up (two
//! epoch ticks, see `sandbox.rs`), whichever comes first, the record as far as it is known (tenant, agent, key,
//! bytes in, start time) goes to this journal; then what the run has used
//! so far (fuel, tokens, bytes fetched, wall time), after each call outside
//! and every tenth of a second while it computes (`sandbox.rs`); when
//! its record is in the outbox, an end mark.
//! The next [`super::Outbox::open`] turns every run the journal holds
//! without an end mark into a record with outcome [`INTERRUPTED`].
//!
//! So a run the process dies in leaves no record only if it had computed
//! for less than a slice and called nothing outside: its fuel for a
//! millisecond or two; one that is recorded misses at most what it used
//! since its last checkpoint (a tenth of a second of computing, or the
//! model call it was in). The runs that end sooner, nearly all of them,
//! never touch the journal.
//!
//! The journal is files of lines, `running-<generation>.jsonl` in the
//! outbox's directory. A generation takes new runs until it passes
//! [`GENERATION_BYTES`]; it is deleted once every run started in it has
//! ended, so the journal holds little more than the runs in progress.

use super::UsageRecord;
use super::lines::LineFile;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, btree_map};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The outcome of a run the process ended in the middle of.
pub const INTERRUPTED: &str = "interrupted";
/// A generation takes no new runs past this size.
pub const GENERATION_BYTES: u64 = 1 << 20;

/// What a run has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    #[serde(default)]
    fuel: u64,
    tokens_in: u64,
    tokens_out: u64,
    http_bytes: u64,
    wall_micros: u64,
}

/// One line of the journal, as written.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Entry<'a> {
    Start(&'a UsageRecord),
    Progress { key: &'a str, used: Progress },
    End(&'a str),
}

/// One line of the journal, as read back.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReadEntry {
    Start(UsageRecord),
    Progress { key: String, used: Progress },
    End(String),
}

struct Generation {
    file: LineFile,
    /// Runs started in it that have not ended.
    open: usize,
}

struct State {
    current: u64,
    generations: BTreeMap<u64, Generation>,
}

/// The journal of one outbox's runs in progress.
pub(super) struct Journal {
    dir: PathBuf,
    state: Mutex<State>,
}

/// A run that has started and whose record is not in the outbox yet
/// ([`super::Outbox::finish`]). It is journaled only once it is worth it
/// ([`InProgress::journal`]): a run that computes for a millisecond or two
/// and calls nothing outside costs the journal nothing.
#[derive(Clone)]
pub struct InProgress(Arc<Run>);

struct Run {
    journal: Arc<Journal>,
    /// The record as far as it is known at the start.
    start: UsageRecord,
    started: Instant,
    /// The generation it is journaled in, once it is.
    generation: Mutex<Option<u64>>,
}

impl std::fmt::Debug for InProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProgress").field("key", &self.0.start.idempotency_key).finish_non_exhaustive()
    }
}

impl Journal {
    /// A new journal in `dir`, whose earlier generations
    /// ([`interrupted_runs`]) have been dealt with.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let current = generations(dir)?.last().map_or(1, |last| last + 1);
        let journal =
            Self { dir: dir.to_path_buf(), state: Mutex::new(State { current, generations: BTreeMap::new() }) };
        Ok(journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A run starting, as `record` describes it; not journaled yet.
    pub fn run(self: &Arc<Self>, record: &UsageRecord) -> InProgress {
        InProgress(Arc::new(Run {
            journal: self.clone(),
            start: record.clone(),
            started: Instant::now(),
            generation: Mutex::new(None),
        }))
    }

    /// Journals the start of the run `record` describes: the generation it
    /// is in.
    fn start(&self, record: &UsageRecord) -> std::io::Result<u64> {
        let line = to_line(&Entry::Start(record));
        let mut state = self.lock();
        let current = state.current;
        let generation = match state.generations.entry(current) {
            btree_map::Entry::Occupied(generation) => generation.into_mut(),
            btree_map::Entry::Vacant(place) => {
                let file = OpenOptions::new().create(true).append(true).open(generation_path(&self.dir, current))?;
                place.insert(Generation { file: LineFile::new(file, 0), open: 0 })
            }
        };
        generation.file.append(&line)?;
        generation.open += 1;
        if generation.file.len() >= GENERATION_BYTES {
            state.current += 1;
        }
        Ok(current)
    }

    /// Writes `entry` to `generation`; `ended` closes a run's place there,
    /// and a generation no run is open in any more, and that takes no new
    /// ones, is deleted.
    fn write(&self, generation: u64, entry: &Entry<'_>, ended: bool) -> std::io::Result<()> {
        let line = to_line(entry);
        let mut state = self.lock();
        let current = state.current;
        let Some(open) = state.generations.get_mut(&generation) else {
            return Ok(()); // ended already
        };
        let written = open.file.append(&line);
        let done = ended && {
            open.open -= 1;
            open.open == 0 && generation != current
        };
        if done {
            state.generations.remove(&generation);
        }
        drop(state);
        if done {
            let path = generation_path(&self.dir, generation);
            if let Err(error) = std::fs::remove_file(&path) {
                // Its runs have all ended: the next open finds nothing to
                // record in it, and deletes it.
                tracing::warn!(%error, path = %path.display(), "could not delete a finished journal file");
            }
        }
        written
    }
}

impl InProgress {
    /// Journals the run, if it is not yet: from then on, should the process
    /// end before the run does, the next open of the outbox records it.
    /// Called once the run has computed for a while, and before it first
    /// calls outside (a model, a web page), which costs whether or not it
    /// ends. A failed write is logged; the record at the run's end counts
    /// all the same.
    pub fn journal(&self) {
        if let Err(error) = self.generation() {
            tracing::warn!(%error, run_id = %self.0.start.idempotency_key, "could not journal a run in progress");
        }
    }

    fn generation(&self) -> std::io::Result<u64> {
        let mut generation = self.0.generation.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *generation {
            Some(journaled) => Ok(journaled),
            None => Ok(*generation.insert(self.0.journal.start(&self.0.start)?)),
        }
    }

    /// Journals what the run has used so far (`fuel` as last measured), so
    /// that it is counted if the process ends before the run does.
    pub fn checkpoint(&self, fuel: u64, tokens: crate::TokenCount, http_bytes: u64) {
        let run = &self.0;
        let wall_micros = u64::try_from(run.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let used = Progress { fuel, tokens_in: tokens.input, tokens_out: tokens.output, http_bytes, wall_micros };
        let key = &run.start.idempotency_key;
        let written = self.generation().and_then(|g| run.journal.write(g, &Entry::Progress { key, used }, false));
        if let Err(error) = written {
            tracing::warn!(%error, run_id = %key, "could not journal a run's usage so far");
        }
    }

    /// Marks the run ended, if it was journaled: its record is in the
    /// outbox.
    pub(super) fn end(&self) {
        let run = &self.0;
        let Some(generation) = *run.generation.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) else {
            return;
        };
        if let Err(error) = run.journal.write(generation, &Entry::End(&run.start.idempotency_key), true) {
            // The run would be recorded again as interrupted after a
            // restart; the ledger counts its key once.
            tracing::warn!(%error, run_id = %run.start.idempotency_key, "could not journal a run's end");
        }
    }
}

/// The records of the runs `dir`'s journal holds without an end mark, with
/// outcome [`INTERRUPTED`] and what they had used at their last checkpoint,
/// in the order they started; and the journal's files, to delete once the
/// records are in the outbox.
pub(super) fn interrupted_runs(dir: &Path) -> std::io::Result<(Vec<UsageRecord>, Vec<PathBuf>)> {
    let mut runs: Vec<Option<UsageRecord>> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut files = Vec::new();
    for generation in generations(dir)? {
        let path = generation_path(dir, generation);
        let file = match File::open(&path) {
            Ok(file) => file,
            // Left for the next open, rather than keeping the host down.
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "cannot read a file of the runs journal");
                continue;
            }
        };
        for line in BufReader::new(file).split(b'\n') {
            let entry = match serde_json::from_slice::<ReadEntry>(&line?) {
                Ok(entry) => entry,
                // The end of a line a crash tore, or a failed write's part.
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "unreadable line of the runs journal skipped");
                    continue;
                }
            };
            match entry {
                ReadEntry::Start(mut record) => {
                    record.outcome = INTERRUPTED.to_owned();
                    at.insert(record.idempotency_key.clone(), runs.len());
                    runs.push(Some(record));
                }
                ReadEntry::Progress { key, used } => {
                    if let Some(record) = at.get(&key).and_then(|&i| runs[i].as_mut()) {
                        record.fuel = used.fuel;
                        record.tokens_in = used.tokens_in;
                        record.tokens_out = used.tokens_out;
                        record.http_bytes = used.http_bytes;
                        record.wall_micros = used.wall_micros;
                    }
                }
                ReadEntry::End(key) => {
                    if let Some(i) = at.remove(&key) {
                        runs[i] = None;
                    }
                }
            }
        }
        files.push(path);
    }
    Ok((runs.into_iter().flatten().collect(), files))
}

fn to_line(entry: &Entry<'_>) -> Vec<u8> {
    let mut line = serde_json::to_vec(entry).expect("a journal entry always serializes");
    line.push(b'\n');
    line
}

fn generation_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("running-{generation:012}.jsonl"))
}

/// Generation numbers present in `dir`, ascending.
fn generations(dir: &Path) -> std::io::Result<Vec<u64>> {
    super::outbox::numbered_files(dir, "running-")
}
