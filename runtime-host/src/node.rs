//! Node components: compiled once, pre-instantiated, run in a sandbox.

use crate::bindings::node::{Node, NodePre};
use crate::engine::Runtime;
use crate::error::{LoadError, RunError};
use crate::sandbox::{RunState, Sandbox};
use crate::{Descriptor, Invocation, NodeError, Output};

/// A node component ready to instantiate in any sandbox of its runtime.
#[derive(Clone)]
pub struct NodeComponent {
    pub(crate) pre: NodePre<RunState>,
}

impl NodeComponent {
    pub(crate) fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Self, LoadError> {
        let component = runtime.compile(bytes)?;
        let instance_pre =
            runtime.linker().instantiate_pre(&component).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = NodePre::new(instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(Self { pre })
    }

    fn instantiate(&self, sandbox: &mut Sandbox) -> Result<Node, RunError> {
        self.pre.instantiate(&mut sandbox.store).map_err(|e| sandbox.classify(e))
    }
}

impl Sandbox {
    /// Instantiates `node` and asks it which component types it implements.
    pub fn describe(&mut self, node: &NodeComponent) -> Result<Vec<Descriptor>, RunError> {
        let instance = node.instantiate(self)?;
        instance.sandflow_node_handler().call_describe(&mut self.store).map_err(|e| self.classify(e))
    }

    /// Instantiates `node` and runs it once. The outer error ends the run
    /// (trap, limit); the inner one is the node's own report.
    pub fn run_node(
        &mut self,
        node: &NodeComponent,
        invocation: &Invocation,
    ) -> Result<Result<Vec<Output>, NodeError>, RunError> {
        let instance = node.instantiate(self)?;
        instance.sandflow_node_handler().call_run(&mut self.store, invocation).map_err(|e| self.classify(e))
    }
}
