//! `sandflow:host/log`: structured lines into the run's trace, bounded so a
//! guest flooding the host with calls costs it fuel and us nothing.

use crate::bindings::node::sandflow::host::log::{Host, Level};
use crate::bindings::node::sandflow::host::types;
use crate::sandbox::RunState;

/// Most lines kept per run; further lines are counted, not stored.
pub const MAX_LINES: usize = 1_000;
/// Most bytes kept per line.
pub const MAX_LINE_BYTES: usize = 4_096;

/// One line a guest logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The text, cut to [`MAX_LINE_BYTES`].
    pub message: String,
}

/// The run's log.
#[derive(Debug, Default)]
pub struct RunLog {
    lines: Vec<LogLine>,
    dropped: u64,
}

impl RunLog {
    /// The kept lines.
    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }

    /// Lines dropped past [`MAX_LINES`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Host for RunState {
    fn log(&mut self, level: Level, mut message: String) {
        if self.log.lines.len() >= MAX_LINES {
            self.log.dropped += 1;
            return;
        }
        if message.len() > MAX_LINE_BYTES {
            let cut = (0..=MAX_LINE_BYTES).rev().find(|&i| message.is_char_boundary(i)).unwrap_or(0);
            message.truncate(cut);
        }
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log.lines.push(LogLine { level, message });
    }
}

impl types::Host for RunState {}
