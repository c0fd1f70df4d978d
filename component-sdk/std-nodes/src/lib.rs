//! The standard node library: Langflow's components reimplemented in Rust
//! with the Sandflow SDK, compiled to one `wasm32-wasip2` component that the
//! host compiles once and instantiates once per run. Each module reproduces
//! one Langflow 1.13 component; the type names are the node names of the
//! compiler's catalog (`chat-input`, `prompt`, …).
//!
//! The logic is plain Rust on SDK values, so it is unit-tested natively
//! (`prompt::render_f_string("You said: {user_input}", …)` and friends).

pub mod agent;
pub mod calculator;
pub mod chat_input;
pub mod chat_output;
pub mod history;
pub mod knowledge;
pub mod language_model;
pub mod memory_base;
pub mod message_history;
mod model;
pub mod parser;
pub mod prompt;
mod retrieved;
pub mod table_text;
pub mod text_io;
pub mod type_convert;
pub mod vector_store;

#[cfg(test)]
mod langflow_parity;

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
    StdNode { name: language_model::NAME, describe: language_model::describe, run: language_model::run },
    StdNode { name: agent::NAME, describe: agent::describe, run: agent::run },
    StdNode { name: message_history::NAME, describe: message_history::describe, run: message_history::run },
    StdNode { name: type_convert::NAME, describe: type_convert::describe, run: type_convert::run },
    StdNode { name: knowledge::NAME, describe: knowledge::describe, run: knowledge::run },
    StdNode { name: memory_base::NAME, describe: memory_base::describe, run: memory_base::run },
    StdNode { name: vector_store::NAME, describe: vector_store::describe, run: vector_store::run },
    StdNode { name: parser::NAME, describe: parser::describe, run: parser::run },
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
