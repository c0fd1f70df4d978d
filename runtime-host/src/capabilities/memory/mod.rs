//! `sandflow:host/memory`: chat history per session, persisted by the host.
//!
//! Configure (operator): a [`MemoryStore`] opened from a URL, SQLite (the
//! file `memory.db` in the data directory by default) or PostgreSQL; with
//! none, every call answers `not-configured`. Prepare (per run):
//! [`RunMemory`] binds the store to the run's tenant and agent, taken from
//! its [`RunContext`](super::RunContext). Host: `history` returns the last
//! `limit` messages of a session, oldest first; `append` stores one (a
//! SQLite file: in its append log, before it returns) or hands it to the
//! store's writer and returns, and then the run's answer waits until it is
//! stored ([`PendingWrites`]).
//!
//! Isolation: the guest names only a session. The tenant and the agent
//! come from the run, so two tenants (or two agents of one tenant) using
//! the same session id never see each other's messages, and nothing a
//! guest sends can name another tenant. Bounds ([`limits`]) cap what one
//! call reads or writes, and each call waits at most until the run's
//! deadline (host calls are out of reach of the epoch interruption, so a
//! stalled database must not hold a run past its deadline).

mod fold;
pub mod limits;
mod log;
mod store;

pub use store::{MemoryError, MemoryStore, PendingWrites, Scope};

use super::io;
use crate::bindings::node::sandflow::host::memory::Host;
use crate::bindings::node::sandflow::host::types::{CapabilityError, Message};
use crate::sandbox::RunState;
use std::future::Future;
use std::time::Duration;

/// How long a finished run waits for its chat-history messages to be
/// stored before it fails.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits, at most [`SETTLE_TIMEOUT`], until a finished run's chat-history
/// messages are stored: the run's error if they are not.
pub(crate) async fn settle_run(writes: PendingWrites) -> Result<(), crate::RunError> {
    if writes.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(SETTLE_TIMEOUT, writes.settle()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            // The database's own words stay in the host's log.
            tracing::error!(%error, "chat history not stored");
            Err(crate::RunError::History("the memory store is unavailable; try again later".into()))
        }
        Err(_) => Err(crate::RunError::History("the memory store did not answer in time".into())),
    }
}

/// The memory of one run: the host's store, scoped to the run's tenant and
/// agent, and the messages the run appended that are still on their way.
#[derive(Debug, Default)]
pub(crate) struct RunMemory {
    store: Option<(MemoryStore, Scope)>,
    /// Appended, not yet known to be stored.
    pub pending: PendingWrites,
}

/// Whose chat history a run of `agent` keeps: the agent's own, or for a
/// public (widget) caller a part of it that no server-side caller shares.
pub(crate) fn history_agent(agent: &str, public: bool) -> std::borrow::Cow<'_, str> {
    if public { format!("{agent}#widget").into() } else { agent.into() }
}

impl RunMemory {
    /// Binds `store` (if the host has one) to `tenant` and `agent`.
    pub fn prepare(store: Option<&MemoryStore>, tenant: &str, agent: &str) -> Self {
        let scope = Scope { tenant: tenant.to_owned(), agent: agent.to_owned() };
        Self { store: store.map(|s| (s.clone(), scope)), pending: PendingWrites::default() }
    }

    fn store(&self) -> Result<&(MemoryStore, Scope), CapabilityError> {
        self.store.as_ref().ok_or_else(|| {
            CapabilityError::NotConfigured(
                "the `memory` capability is not configured on this host; the operator sets --memory-url".into(),
            )
        })
    }
}

impl RunState {
    /// Runs one store operation on the I/O runtime, bounded by the run's
    /// remaining time, and turns its errors into what the guest may see.
    fn memory_call<T, F>(&self, operation: impl FnOnce(MemoryStore, Scope) -> F) -> Result<T, CapabilityError>
    where
        F: Future<Output = Result<T, MemoryError>>,
    {
        let (store, scope) = self.caps.memory.store()?.clone();
        self.memory_wait(operation(store, scope))
    }

    /// Waits for `operation` on the I/O runtime until the run's deadline.
    fn memory_wait<T>(&self, operation: impl Future<Output = Result<T, MemoryError>>) -> Result<T, CapabilityError> {
        let remaining: Duration =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        let outcome = io::block_on(async { tokio::time::timeout(remaining, operation).await });
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(guest_error(error)),
            Err(_) => Err(CapabilityError::Denied("the memory store did not answer before the run's deadline".into())),
        }
    }
}

/// What the guest may see of a store error.
fn guest_error(error: MemoryError) -> CapabilityError {
    match error {
        MemoryError::Invalid(message) => CapabilityError::Invalid(message),
        error => {
            // The database's own words stay in the host's log.
            tracing::error!(%error, "memory store call failed");
            CapabilityError::Failed("the memory store is unavailable; try again later".into())
        }
    }
}

impl Host for RunState {
    fn history(&mut self, session_id: String, limit: u32) -> Result<Vec<Message>, CapabilityError> {
        let span = tracing::info_span!(
            "runtime_host.memory",
            operation = "history",
            limit,
            messages = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        let _entered = span.enter();
        // A run reads what it wrote: its own appends are stored first.
        let pending = self.caps.memory.pending.take();
        if !pending.is_empty() {
            self.memory_wait(pending.settle())?;
        }
        let messages =
            self.memory_call(|store, scope| async move { store.history(&scope, &session_id, limit).await })?;
        span.record("messages", messages.len());
        span.record("bytes", messages.iter().map(|m| m.text.len()).sum::<usize>());
        Ok(messages)
    }

    /// Stores the message or enqueues it and returns: the run goes on
    /// while the writer stores it, and the run is not answered before it
    /// is stored.
    fn append(&mut self, message: Message) -> Result<(), CapabilityError> {
        let span = tracing::info_span!("runtime_host.memory", operation = "append", bytes = message.text.len());
        let _entered = span.enter();
        let (store, scope) = self.caps.memory.store()?;
        let pending = store.enqueue(scope, &message).map_err(guest_error)?;
        self.caps.memory.pending.push(pending);
        Ok(())
    }
}
