//! Records the sink rejects for what they hold, kept in [`REJECTED`]
//! beside the outbox's segments with the sink's reason, and offered to it
//! again when delivery starts.

use super::UsageRecord;
use super::lines::LineFile;
use super::outbox::BATCH;
use super::sink::{Sink, SinkError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The file, in the outbox's directory, of records the sink rejected.
pub const REJECTED: &str = "rejected.jsonl";
/// What [`REJECTED`] becomes while its records are offered again.
const REOFFERED: &str = "rejected.jsonl.tmp";

/// A record the sink rejected, as [`REJECTED`] keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SetAside {
    record: UsageRecord,
    /// What the sink said.
    reason: String,
}

/// Delivers `batch`. A batch the sink rejects is halved until each record
/// it rejects stands alone; returns those, with the sink's reasons.
pub(super) async fn deliver_sorting(sink: &impl Sink, batch: &[UsageRecord]) -> Result<Vec<SetAside>, SinkError> {
    let mut rejected = Vec::new();
    let mut parts = vec![batch];
    while let Some(part) = parts.pop() {
        match sink.deliver(part).await {
            Ok(()) => {}
            Err(SinkError::Rejected(reason)) if part.len() == 1 => {
                rejected.push(SetAside { record: part[0].clone(), reason });
            }
            Err(SinkError::Rejected(_)) => {
                let (first, second) = part.split_at(part.len() / 2);
                parts.extend([second, first]);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(rejected)
}

/// Appends `kept` to [`REJECTED`] in `dir`, logged, and syncs it. Each
/// record gets a line of its own even after a crash left part of a line at
/// the end (that part stays, as a line that does not read).
pub(super) fn append(dir: &Path, kept: &[SetAside]) -> std::io::Result<()> {
    for one in kept {
        tracing::error!(
            key = %one.record.idempotency_key, tenant = %one.record.tenant, reason = %one.reason,
            "usage record rejected by the sink; kept in {REJECTED}"
        );
    }
    let path = dir.join(REJECTED);
    let new = !path.exists();
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
    let mut len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last != *b"\n" {
            file.write_all(b"\n")?;
            len += 1;
        }
    }
    // One write: should it fail halfway, all of it is cut off again, so
    // the batch's retry does not keep some records twice.
    let mut all = Vec::new();
    for one in kept {
        all.extend(line(one)?);
    }
    let mut lines = LineFile::new(file, len);
    lines.append(&all)?;
    lines.file().sync_data()?;
    if new { sync_dir(dir) } else { Ok(()) }
}

/// Makes the creation, renaming or removal of a file in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn line(one: &SetAside) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(one)?;
    line.push(b'\n');
    Ok(line)
}

/// Offers the records in [`REJECTED`] to `sink` again, [`BATCH`] at a
/// time; returns how many it took. What it still rejects is kept with its
/// new reason, and a line that does not read is kept as it is.
///
/// The file is read and rewritten a batch at a time into [`REOFFERED`],
/// which replaces it at the end (synced, then renamed). Should the sink
/// stop answering partway, the records not yet offered are copied over
/// as they were, so the file loses nothing and keeps what was settled; a
/// crash leaves the file as it was, and the records are offered again
/// (the sink counts each idempotency key once).
pub(super) async fn offer_again(dir: &Path, sink: &impl Sink) -> Result<usize, SinkError> {
    let path = dir.join(REJECTED);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(unavailable(e)),
    };
    let mut reader = BufReader::new(file);
    let reoffered = dir.join(REOFFERED);
    let mut out = BufWriter::new(File::create(&reoffered).map_err(unavailable)?);
    let (mut taken, mut still, mut unreadable) = (0, 0, 0);
    let mut stopped = None;
    loop {
        let (mut lines, mut records) = (Vec::new(), Vec::new());
        while records.len() < BATCH {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).map_err(unavailable)? == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                line.push(b'\n'); // a line torn by a crash: kept, whole
            }
            match serde_json::from_slice::<SetAside>(&line) {
                Ok(kept) => {
                    records.push(kept.record);
                    lines.push(line);
                }
                Err(_) => {
                    unreadable += 1;
                    out.write_all(&line).map_err(unavailable)?;
                }
            }
        }
        if records.is_empty() {
            break;
        }
        match deliver_sorting(sink, &records).await {
            Ok(rejected) => {
                taken += records.len() - rejected.len();
                still += rejected.len();
                for one in &rejected {
                    out.write_all(&line(one).map_err(unavailable)?).map_err(unavailable)?;
                }
            }
            Err(error) => {
                for line in &lines {
                    out.write_all(line).map_err(unavailable)?;
                }
                std::io::copy(&mut reader, &mut out).map_err(unavailable)?;
                stopped = Some(error);
                break;
            }
        }
    }
    let out = out.into_inner().map_err(|e| unavailable(e.into_error()))?;
    out.sync_data().map_err(unavailable)?;
    let empty = out.metadata().map_err(unavailable)?.len() == 0;
    drop(out);
    if empty {
        std::fs::remove_file(&path).map_err(unavailable)?;
        std::fs::remove_file(&reoffered).map_err(unavailable)?;
    } else {
        std::fs::rename(&reoffered, &path).map_err(unavailable)?;
    }
    // Before anything is appended to the file that is now there.
    sync_dir(dir).map_err(unavailable)?;
    tracing::info!(taken, still_rejected = still, unreadable, "set-aside usage records offered again");
    match stopped {
        Some(error) => Err(error),
        None => Ok(taken),
    }
}

/// A local file error, as the delivery loop reports it: tried again later.
fn unavailable(error: std::io::Error) -> SinkError {
    SinkError::Unavailable(error.to_string())
}
