//! The node library a runtime links flows against: the standard library
//! (one component, compiled once per process) and published custom nodes.

use crate::error::LoadError;
use crate::node::NodeComponent;
use std::collections::{HashMap, HashSet};

/// Nodes available to flows.
pub(crate) struct NodeLibrary {
    pub std: NodeComponent,
    pub std_types: HashSet<String>,
    pub custom: HashMap<String, NodeComponent>,
}

/// How the host runs one node of a plan.
#[derive(Clone)]
pub(crate) enum Binding {
    /// A node of the standard library, by type name.
    Std(String),
    /// A custom node component and the type name it implements.
    Custom(NodeComponent, String),
    /// A Loop: iteration is the host's (see `flow::loops`).
    Loop,
    /// Run by an agent as a tool (through the inner binding), never by
    /// the schedule, which only hands the agent its description.
    Tool(Box<Binding>),
}

impl NodeLibrary {
    /// Resolves a plan node to what runs it.
    pub fn bind(&self, node: &sandflow_flow_compiler::ir::PlanNode) -> Result<Binding, LoadError> {
        use sandflow_flow_compiler::catalog::Role;
        if node.role == Role::Loop {
            return Ok(Binding::Loop);
        }
        let runner = self.runner(node)?;
        Ok(if node.tool { Binding::Tool(Box::new(runner)) } else { runner })
    }

    fn runner(&self, node: &sandflow_flow_compiler::ir::PlanNode) -> Result<Binding, LoadError> {
        if self.std_types.contains(&node.node) {
            return Ok(Binding::Std(node.node.clone()));
        }
        if let Some(custom) = self.custom.get(&node.node) {
            return Ok(Binding::Custom(custom.clone(), node.component.clone()));
        }
        Err(LoadError::Link(format!(
            "node `{}` ({}) needs `{}`, which this host's node library does not have yet",
            node.id, node.component, node.node
        )))
    }
}
