//! What one run may use.

use std::time::Duration;

/// Limits of one sandbox. Each defends against a different hostile guest:
/// fuel against CPU burning (infinite loops), memory against allocation
/// bombs, the deadline against guests that block cheaply, tables and
/// instances against resource growth that memory caps do not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget: roughly one unit per WebAssembly instruction.
    pub fuel: u64,
    /// Most bytes of linear memory, summed over the run's instances.
    pub memory_bytes: usize,
    /// Wall-clock time the run may take.
    pub deadline: Duration,
    /// Most table elements any one table may hold.
    pub table_elements: usize,
    /// Most component and core instances the run may create.
    pub instances: usize,
    /// Most host resources (handles) the run may hold at once.
    pub resources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 5_000_000_000,
            memory_bytes: 128 << 20,
            deadline: Duration::from_secs(30),
            table_elements: 100_000,
            instances: 64,
            resources: 1_000,
        }
    }
}
