//! Usage metering: one record per run, appended to a durable local outbox
//! and delivered at least once to a sink (the control plane's
//! `POST /api/runtime/usage/`), which deduplicates by idempotency key.
//!
//! Durability: a record is written to the outbox file (one `write` into the
//! kernel's page cache) before the run's response is sent, so killing the
//! process loses nothing; the file is synced to disk by the delivery loop
//! at least every [`outbox::SYNC_INTERVAL`], which bounds what a machine
//! crash could lose. Delivery resumes from a persisted cursor after a
//! restart; a batch sent but not yet marked delivered is sent again. A
//! batch the sink rejects for what it holds (400, 413, 422) is halved until
//! the records at fault stand alone; those are kept in [`REJECTED`] with
//! the sink's reason, and delivery goes on past them. Each time delivery
//! starts (a host's start) they are offered again, so once the sink's
//! operator has fixed what it objected to, a restart delivers them.
//!
//! A run the process is killed in the middle of is recorded too: a run
//! that calls outside or computes for more than a lane slice is journaled
//! with what it has used as it goes, and the next [`Outbox::open`] records
//! the runs left in the journal with outcome [`INTERRUPTED`] and what they
//! had used by then (see [`InProgress`]).

mod in_progress;
mod lines;
mod outbox;
mod set_aside;
mod sink;

pub use in_progress::{GENERATION_BYTES, INTERRUPTED, InProgress};
pub use outbox::{BATCH, MAX_BACKLOG_BYTES, Outbox, OutboxError, SEGMENT_BYTES, SYNC_INTERVAL};
pub use set_aside::REJECTED;
pub use sink::{HttpSink, Sink, SinkError};

use serde::{Deserialize, Serialize};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The run id: the ledger counts each key once.
    pub idempotency_key: String,
    /// Tenant (buyer organisation).
    pub tenant: String,
    /// Agent.
    pub agent: String,
    /// Subscription billed, when the key names one.
    pub subscription: Option<String>,
    /// `sha256:` digest of the flow component.
    pub flow_version: String,
    /// Fuel used.
    pub fuel: u64,
    /// LLM tokens sent.
    pub tokens_in: u64,
    /// LLM tokens received.
    pub tokens_out: u64,
    /// Wall time of the run, microseconds.
    pub wall_micros: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response bytes (the answers' text).
    pub bytes_out: u64,
    /// Bytes the run's `http` capability received (pages, API answers,
    /// search results), headers and bodies. Left out of the JSON when zero,
    /// so a control plane that predates the field still takes the records
    /// of runs that made no requests.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_bytes: u64,
    /// `completed`, the kind of failure (`node_error`, `out_of_fuel`, …),
    /// or `interrupted`: the host stopped during the run, which is counted
    /// with what it had used by its last model call.
    pub outcome: String,
    /// When the run started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The API key the run was called with (its `sub`), so the control
    /// plane can show when a key was last used. Records written before the
    /// field existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}
