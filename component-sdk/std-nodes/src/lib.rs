//! The standard node library: Langflow's components reimplemented in Rust
//! with the Sandflow SDK, compiled to one `wasm32-wasip2` component that the
//! host compiles once and instantiates once per run. Each module reproduces
//! one Langflow 1.13 component; the type names are the node names of the
//! compiler's catalog (`chat-input`, `prompt`, …).
//!
//! The logic is plain Rust on SDK values, so it is unit-tested natively
//! (`prompt::render_f_string("You said: {user_input}", …)` and friends).

pub mod agent;
pub mod batch_run;
pub mod calculator;
pub mod chat_input;
pub mod chat_output;
pub mod conditional_router;
pub mod current_date;
pub mod directory;
pub mod file;
pub mod history;
pub mod keyword_search;
pub mod knowledge;
pub mod language_model;
pub mod llm_chain;
pub mod memory_base;
pub mod message_history;
pub mod message_to_data;
mod model;
pub mod parse_data;
pub mod parser;
pub mod prompt;
pub mod pyfmt;
pub mod save_to_file;
pub mod split_text;
pub mod sql;
pub mod structured_output;
pub mod table_text;
pub mod text_io;
pub mod type_convert;
// The outside world, through the `http` capability.
pub mod api_request;
pub mod arxiv;
pub mod assemblyai;
mod markup;
mod retrieved;
pub mod url;
pub mod vector_store;
mod web;
pub mod web_search;
pub mod webhook;

#[cfg(test)]
mod langflow_parity;
#[cfg(test)]
mod text_parity;

use sandflow_sdk::{Descriptor, Invocation, Node, NodeError, Output};

/// One standard node: its description and its run function.
pub struct StdNode {
    /// Type name (the catalog's node name).
    pub name: &'static str,
    /// Describes the node (its type name is the catalog's node name).
    pub describe: fn() -> Descriptor,
    /// Runs it.
    pub run: fn(&Invocation) -> Result<Vec<Output>, NodeError>,
}

/// Every node of the library.
pub const NODES: &[StdNode] = &[
    StdNode { name: chat_input::NAME, describe: chat_input::describe, run: chat_input::run },
    StdNode { name: chat_output::NAME, describe: chat_output::describe, run: chat_output::run },
    StdNode { name: prompt::NAME, describe: prompt::describe, run: prompt::run },
    StdNode { name: text_io::INPUT, describe: text_io::describe_input, run: text_io::run },
    StdNode { name: text_io::OUTPUT, describe: text_io::describe_output, run: text_io::run },
    StdNode { name: calculator::NAME, describe: calculator::describe, run: calculator::run },
    StdNode { name: current_date::NAME, describe: current_date::describe, run: current_date::run },
    StdNode { name: language_model::NAME, describe: language_model::describe, run: language_model::run },
    StdNode { name: webhook::NAME, describe: webhook::describe, run: webhook::run },
    StdNode { name: llm_chain::NAME, describe: llm_chain::describe, run: llm_chain::run },
    StdNode { name: agent::NAME, describe: agent::describe, run: agent::run },
    StdNode { name: message_history::NAME, describe: message_history::describe, run: message_history::run },
    StdNode { name: type_convert::NAME, describe: type_convert::describe, run: type_convert::run },
    StdNode { name: url::NAME, describe: url::describe, run: url::run },
    StdNode { name: web_search::NAME, describe: web_search::describe, run: web_search::run },
    StdNode { name: arxiv::NAME, describe: arxiv::describe, run: arxiv::run },
    StdNode { name: api_request::NAME, describe: api_request::describe, run: api_request::run },
    StdNode { name: assemblyai::NAME, describe: assemblyai::describe, run: assemblyai::run },
    StdNode { name: parser::NAME, describe: parser::describe, run: parser::run },
    StdNode { name: split_text::NAME, describe: split_text::describe, run: split_text::run },
    StdNode { name: message_to_data::NAME, describe: message_to_data::describe, run: message_to_data::run },
    StdNode { name: parse_data::NAME, describe: parse_data::describe, run: parse_data::run },
    StdNode { name: conditional_router::NAME, describe: conditional_router::describe, run: conditional_router::run },
    StdNode { name: keyword_search::NAME, describe: keyword_search::describe, run: keyword_search::run },
    StdNode { name: structured_output::NAME, describe: structured_output::describe, run: structured_output::run },
    StdNode { name: batch_run::NAME, describe: batch_run::describe, run: batch_run::run },
    StdNode { name: file::NAME, describe: file::describe, run: file::run },
    StdNode { name: save_to_file::NAME, describe: save_to_file::describe, run: save_to_file::run },
    StdNode { name: directory::NAME, describe: directory::describe, run: directory::run },
    StdNode { name: sql::NAME, describe: sql::describe, run: sql::run },
    StdNode { name: knowledge::NAME, describe: knowledge::describe, run: knowledge::run },
    StdNode { name: memory_base::NAME, describe: memory_base::describe, run: memory_base::run },
    StdNode { name: vector_store::NAME, describe: vector_store::describe, run: vector_store::run },
];

/// The library as a node component.
pub struct Library;

impl Node for Library {
    fn describe() -> Vec<Descriptor> {
        NODES.iter().map(|n| (n.describe)()).collect()
    }

    fn run(invocation: Invocation) -> Result<Vec<Output>, NodeError> {
        let node = NODES.iter().find(|n| n.name == invocation.component).ok_or_else(|| {
            NodeError::InvalidInput(format!("the standard library has no node `{}`", invocation.component))
        })?;
        let outputs = (node.run)(&invocation)?;
        Ok(outputs
            .into_iter()
            .filter(|o| invocation.wanted.is_empty() || invocation.wanted.contains(&o.name))
            .collect())
    }
}

sandflow_sdk::export_node!(Library);
