//! A file that grows by whole lines, for the outbox's segments and the
//! journal of runs in progress.

use std::fs::File;
use std::io::Write;

/// An append-only file of lines. A write that fails halfway (a full disk)
/// leaves part of a line, and the next line would be glued to it: one line
/// that reads as neither. It is cut off first.
pub(super) struct LineFile {
    file: File,
    len: u64,
    /// A failed write left part of a line past `len`, and cutting it off
    /// failed too: the next append tries again before it writes.
    torn: bool,
}

impl LineFile {
    /// `file`, opened for appending, whose whole lines end at `len`.
    pub fn new(file: File, len: u64) -> Self {
        Self { file, len, torn: false }
    }

    /// Appends `line` (which ends in a newline). When this returns, killing
    /// the process loses nothing: the line is in the kernel's hands.
    pub fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.torn {
            self.file.set_len(self.len)?;
            self.torn = false;
        }
        if let Err(error) = write_line(&mut self.file, line) {
            self.torn = self.file.set_len(self.len).is_err();
            return Err(error);
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Bytes of whole lines written.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Appends `line` to `file` (tests make it fail halfway:
/// [`crate::short_write`]).
fn write_line(file: &mut File, line: &[u8]) -> std::io::Result<()> {
    if let Some((part, error)) = crate::short_write::injected(line) {
        file.write_all(part)?;
        return Err(error);
    }
    file.write_all(line)
}
