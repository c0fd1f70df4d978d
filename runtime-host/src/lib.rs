//! Runs Sandflow components in wasmtime sandboxes.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (pooling allocator,
//! copy-on-write memory images, fuel, one epoch ticker thread). Components are
//! compiled once and pre-instantiated ([`NodeComponent`]); every run gets a
//! fresh [`Sandbox`] (a `Store`) carrying the tenant's [`Limits`] and the
//! capability context, so a trap, a limit or a guest error ends that run and
//! nothing else.
//!
//! ```no_run
//! use sandflow_runtime_host::{Limits, Runtime, RuntimeConfig};
//!
//! # fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::new(&RuntimeConfig::default())?;
//! let node = runtime.load_node(&std::fs::read("word_count_node.wasm")?)?;
//! let mut sandbox = runtime.sandbox(Limits::default());
//! for descriptor in sandbox.describe(&node)? {
//!     println!("implements {}", descriptor.type_name);
//! }
//! println!("describing used {} fuel", sandbox.fuel_consumed());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod api;
mod bindings;
mod cache;
mod capabilities;
mod engine;
mod epoch;
mod error;
mod flow;
mod guest_clock;
mod idle;
pub mod lanes;
mod library;
mod limits;
mod node;
pub mod provisioning;
mod sandbox;
mod short_write;
pub mod usage;

pub use bindings::node::exports::sandflow::node::handler::{Descriptor, Field, Invocation, NodeError, Output, Port};
pub use bindings::node::sandflow::host::types::{Data, Message, ModelSettings, Table, Tool, Value};
pub use capabilities::calendar::Calendar;
pub use capabilities::embeddings::EmbeddingsConfig;
pub use capabilities::files::{
    DIRECTORY_BYTES, FileStore, FilesConfig, FilesError, FilesScope, ListedFile, StoredFile, TenantUsage,
};
pub use capabilities::http::{HostPattern, HttpConfig, Route as HttpRoute, WebSearchProvider};
pub use capabilities::io::client_builder as http_client_builder;
pub use capabilities::llm::{Backend, LlmConfig, Provider, TokenCount};
pub use capabilities::log::LogLine;
pub use capabilities::memory::limits as memory_limits;
pub use capabilities::memory::{MemoryError, MemoryStore, Scope as MemoryScope};
pub use capabilities::persona::Persona;
pub use capabilities::retrieval::{open as open_documents, open_blocking as open_documents_blocking};
pub use capabilities::secrets::{Secret, Secrets};
pub use capabilities::sql::{SqlConfig, SqlDatabase};
pub use capabilities::{CapabilityConfig, EventSender, RunContext, RunEvent};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{LoadError, RunError};
pub use flow::{FlowComponent, FlowOutput, InputType, NodeEvent, RunOutcome, RunRequest};
pub use limits::Limits;
pub use node::NodeComponent;
pub use sandbox::Sandbox;
pub use sandflow_doc_index as doc_index;
