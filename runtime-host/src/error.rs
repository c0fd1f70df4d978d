//! Errors of the runtime: loading a component, and running one.

use std::time::Duration;

/// A component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid component, or use features the engine refuses.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error("the component cannot be linked: {0}")]
    Link(String),
}

/// Why a run ended without an answer. Each ends that run only.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run used up its fuel budget.
    #[error("the run used its whole fuel budget ({0} units)")]
    OutOfFuel(u64),
    /// The run passed its wall-clock deadline.
    #[error("the run passed its deadline of {0:?}")]
    Deadline(Duration),
    /// The guest tried to grow memory, tables or instances past its limits.
    #[error("the run hit a resource limit: {0}")]
    Limit(String),
    /// The guest trapped (a bug or a deliberate abort in guest code).
    #[error("the guest trapped: {0}")]
    Trap(String),
    /// A node reported an error; the run stopped there.
    #[error("node `{node_id}` ({display_name}) failed: {message}")]
    Node {
        /// The node's id.
        node_id: String,
        /// Its display name.
        display_name: String,
        /// What it reported.
        message: String,
    },
    /// The request cannot run as given (bad tweaks, say).
    #[error("{0}")]
    Request(String),
    /// The host failed while running the flow (a bug of ours, not the
    /// flow's); the cause is in the host's log.
    #[error("the host failed while running this flow; the operator can find the cause in the host's log")]
    Host,
    /// The run finished, but the chat-history messages it appended could
    /// not be stored, so its answer is not given.
    #[error("the run's chat history could not be stored: {0}")]
    History(String),
}

impl RunError {
    /// A short name for usage records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OutOfFuel(_) => "out_of_fuel",
            Self::Deadline(_) => "deadline",
            Self::Limit(_) => "limit",
            Self::Trap(_) => "trap",
            Self::Node { .. } => "node_error",
            Self::Request(_) => "bad_request",
            Self::Host => "host_error",
            Self::History(_) => "history_not_stored",
        }
    }
}
