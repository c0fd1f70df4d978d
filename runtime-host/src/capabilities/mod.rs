//! Host capabilities: the only ways out of the sandbox.
//!
//! Each has the same shape: configured per host or tenant
//! ([`CapabilityConfig`]), prepared per run ([`RunContext`] → the run's
//! [`RunCaps`]), implemented on the run's store data, and metered into the
//! run's usage. Every call is scoped by the run's tenant and agent, never by
//! an identifier the guest supplies.

pub mod calendar;
pub mod embeddings;
pub mod files;
pub mod http;
pub mod io;
pub mod llm;
pub mod log;
pub mod memory;
pub mod persona;
pub mod retrieval;
pub mod secrets;
pub mod sql;

use secrets::Secrets;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the host's capabilities are configured (by the operator).
#[derive(Debug, Clone, Default)]
pub struct CapabilityConfig {
    /// Model providers.
    pub llm: llm::LlmConfig,
    /// The operator's secrets (provider keys), used when the agent's own
    /// secrets do not name them.
    pub secrets: Secrets,
    /// Where chat history is kept; without one, `memory` answers
    /// `not-configured`.
    pub memory: Option<memory::MemoryStore>,
    /// Outbound HTTP and web search; without it, `http` answers
    /// `not-configured`.
    pub http: Option<http::HttpConfig>,
    /// Tenant file storage; without one, `files` answers `not-configured`.
    pub files: Option<files::FileStore>,
    /// SQL databases flows may query; with none, `sql` answers `not-configured`.
    pub sql: sql::SqlConfig,
    /// The tenants' document index; without one, `retrieval` answers
    /// `not-configured`.
    pub documents: Option<sandflow_doc_index::DocIndex>,
    /// Embedding models (served by the `llm` providers).
    pub embeddings: embeddings::EmbeddingsConfig,
    /// Where the date and time come from (the system clock unless fixed).
    pub calendar: calendar::Calendar,
}

/// Something a run reports while it runs, for streaming clients.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run's input message, once its Chat Input node has run.
    Input(Box<crate::FlowOutput>),
    /// A piece of text a model produced, in the order produced.
    Token {
        /// The node whose model call produced it.
        node_id: String,
        /// The text.
        text: String,
    },
}

/// Where a run's events go.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Who a run is for and what it may use: prepared per run.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// Tenant (buyer organisation).
    pub tenant: String,
    /// Agent.
    pub agent: String,
    /// The agent's secrets (buyer's and seller's global variables).
    pub secrets: Secrets,
    /// Receives tokens as models produce them, when the client streams.
    pub events: Option<EventSender>,
    /// The buyer's persona, which every model call of the run starts with.
    pub persona: Option<Arc<persona::Persona>>,
    /// The caller holds a public (widget) key: its chat sessions are kept
    /// apart from the agent's other sessions, which server-side callers and
    /// webhooks fill and which anyone who copies the key from a page would
    /// otherwise read.
    pub public: bool,
    /// The run as the usage outbox's journal of runs in progress knows it:
    /// what it has used is journaled as it goes (see
    /// [`crate::usage::InProgress`]).
    pub in_progress: Option<crate::usage::InProgress>,
}

/// The capability state of one run, in its store.
pub(crate) struct RunCaps {
    pub config: Arc<CapabilityConfig>,
    /// The run's tenant (the SQL allow-list's, and name lookups' bound).
    pub tenant: String,
    /// The agent's secrets over the operator's (model providers' keys).
    pub secrets: Secrets,
    /// The agent's own secrets: what `http` may send (see `http::credentials`).
    pub agent_secrets: Secrets,
    pub events: Option<EventSender>,
    pub persona: Option<Arc<persona::Persona>>,
    /// The node running now, which the tokens it streams are credited to.
    pub node_id: String,
    pub deadline: Instant,
    pub tokens: llm::TokenCount,
    /// The host's chat history, scoped to the run's tenant and agent.
    pub memory: memory::RunMemory,
    /// Response body bytes the run's `http` calls received.
    pub http_bytes: u64,
    /// The tenant's files, scoped to the run's tenant and agent.
    pub files: files::RunFiles,
    /// The tenant's document index, scoped to the run's tenant and agent.
    pub retrieval: retrieval::RunRetrieval,
    /// The run in the journal of runs in progress, when its usage is
    /// recorded.
    pub in_progress: Option<crate::usage::InProgress>,
    /// Fuel the run had used when the epoch callback last looked (host
    /// calls cannot read the store's fuel), for its checkpoints.
    pub fuel_used: u64,
}

impl RunCaps {
    pub fn new(config: Arc<CapabilityConfig>, context: RunContext, deadline: Duration) -> Self {
        Self {
            memory: memory::RunMemory::prepare(
                config.memory.as_ref(),
                &context.tenant,
                &memory::history_agent(&context.agent, context.public),
            ),
            files: files::RunFiles::prepare(config.files.as_ref(), &context.tenant, &context.agent),
            retrieval: retrieval::RunRetrieval::prepare(config.documents.as_ref(), &context.tenant, &context.agent),
            agent_secrets: context.secrets.clone(),
            secrets: context.secrets.or(&config.secrets),
            config,
            events: context.events,
            persona: context.persona,
            node_id: String::new(),
            deadline: Instant::now() + deadline,
            tokens: llm::TokenCount::default(),
            http_bytes: 0,
            tenant: context.tenant,
            in_progress: context.in_progress,
            fuel_used: 0,
        }
    }

    /// Before the run calls outside (a model, a web page): it is journaled
    /// among the runs in progress, when its usage is recorded, so that
    /// what the call costs is counted even if the host stops meanwhile.
    pub fn calling_out(&self) {
        if let Some(run) = &self.in_progress {
            run.journal();
        }
    }

    /// Journals what the run has used so far (after a call outside, and
    /// while it computes), when its usage is recorded.
    pub fn checkpoint(&self) {
        if let Some(run) = &self.in_progress {
            run.checkpoint(self.fuel_used, self.tokens, self.http_bytes);
        }
    }

    /// Counts what an `http` call received.
    pub fn received(&mut self, bytes: u64) {
        self.http_bytes += bytes;
        self.checkpoint();
    }

    /// Time left before the run's deadline, if any.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Where the current node's tokens go, when a client is listening.
    pub fn token_sink(&self) -> Option<TokenSink> {
        let events = self.events.clone()?;
        Some(TokenSink { events, node_id: self.node_id.clone() })
    }
}

/// Sends one node's tokens to the streaming client.
pub(crate) struct TokenSink {
    events: EventSender,
    node_id: String,
}

impl TokenSink {
    pub fn send(&self, text: &str) {
        // A client that went away stops listening; the run still completes.
        let _ = self.events.send(RunEvent::Token { node_id: self.node_id.clone(), text: text.to_owned() });
    }
}
