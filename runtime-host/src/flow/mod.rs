//! Compiled flows: loading a flow component against the node library, and
//! running it in a sandbox.
//!
//! The flow component owns the schedule; the host owns the values on the
//! edges. `schedule.run` calls back into [`engine`] (`run-node`,
//! `has-output`, `loop-next`), which builds each node's invocation from the
//! plan's parameters, the request's tweaks and inputs, and the outputs of
//! earlier nodes, and calls the node component in the same store, so fuel,
//! memory and the deadline cover the whole run.

pub(crate) mod engine;
mod invocation;
mod loops;
mod request;
pub(crate) mod tools;
mod values;

pub use request::{InputType, RunRequest};

use crate::bindings::flow::FlowPre;
use crate::bindings::flow::exports::sandflow::flow::schedule::Status;
use crate::bindings::node::Node;
use crate::engine::Runtime;
use crate::error::{LoadError, RunError};
use crate::library::Binding;
use crate::sandbox::{RunState, Sandbox};
use crate::{Field, Value};
use sandflow_flow_compiler::Artifact;
use sandflow_flow_compiler::catalog::Role;
use sandflow_flow_compiler::ir::Plan;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A compiled flow, linked against the runtime's node library and
/// pre-instantiated: cheap to clone, ready to run in any sandbox.
#[derive(Clone)]
pub struct FlowComponent {
    pub(crate) inner: Arc<LoadedFlow>,
}

pub(crate) struct LoadedFlow {
    pre: FlowPre<RunState>,
    pub plan: Plan,
    pub digest: String,
    pub bindings: Vec<Binding>,
    /// Static fields of each node, already converted to values.
    pub params: Vec<Vec<Field>>,
    /// Non-feedback edges into each node, in edge order.
    pub incoming: Vec<Vec<usize>>,
    /// Outputs of each node the flow consumes (all of them for output nodes).
    pub wanted: Vec<Vec<String>>,
    /// What tool nodes hold from the start of a run: their descriptions, on
    /// their tool output (node, output, value). The schedule never runs them.
    pub tool_values: Vec<(usize, usize, Value)>,
}

impl FlowComponent {
    pub(crate) fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Self, LoadError> {
        let artifact = Artifact::from_component(bytes.to_vec()).map_err(|e| LoadError::Compile(e.to_string()))?;
        let component = runtime.compile(bytes)?;
        let instance_pre =
            runtime.linker().instantiate_pre(&component).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = FlowPre::new(instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let plan = artifact.plan;
        let bindings = plan.nodes.iter().map(|n| runtime.library().bind(n)).collect::<Result<Vec<_>, _>>()?;
        let params = plan.nodes.iter().map(|n| n.params.iter().flat_map(values::param_fields).collect()).collect();
        let mut incoming = vec![Vec::new(); plan.nodes.len()];
        let mut wanted: Vec<Vec<String>> = vec![Vec::new(); plan.nodes.len()];
        for (i, e) in plan.edges.iter().enumerate() {
            if !e.feedback {
                incoming[e.to as usize].push(i);
            }
            let name = &plan.nodes[e.from as usize].outputs[e.output as usize].name;
            if !wanted[e.from as usize].contains(name) {
                wanted[e.from as usize].push(name.clone());
            }
        }
        for (i, node) in plan.nodes.iter().enumerate() {
            if matches!(node.role, Role::ChatOutput | Role::TextOutput) {
                wanted[i] = node.outputs.iter().map(|o| o.name.clone()).collect();
            }
        }
        let tool_values = plan
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(bindings[*i], Binding::Tool(_)))
            .filter_map(|(i, n)| {
                let k = n.outputs.iter().position(|o| o.name == tools::TOOL_OUTPUT)?;
                Some((i, k, Value::Tools(tools::describe(n))))
            })
            .collect();
        let digest = artifact.manifest.digest;
        let inner = LoadedFlow { pre, plan, digest, bindings, params, incoming, wanted, tool_values };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The flow's plan.
    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }

    /// `sha256:` digest of the flow component.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }
}

/// One answer of a run: the message of an output node.
#[derive(Debug, Clone)]
pub struct FlowOutput {
    /// The output node's id.
    pub node_id: String,
    /// Its display name.
    pub display_name: String,
    /// The node that fed it (Langflow's `properties.source`): id and display name.
    pub source: Option<(String, String)>,
    /// What it produced (a Message for Chat and Text Output).
    pub value: Value,
}

/// What ran, for traces and streams.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// Node id.
    pub node_id: String,
    /// Whether it produced its outputs.
    pub completed: bool,
    /// Time spent in it.
    pub elapsed: Duration,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Messages of the output nodes, in plan order.
    pub outputs: Vec<FlowOutput>,
    /// The run's input messages (Chat Input's message), for Langflow's stream.
    pub inputs: Vec<FlowOutput>,
    /// Nodes run, in order.
    pub events: Vec<NodeEvent>,
    /// Fuel used.
    pub fuel: u64,
    /// Tokens its model calls used.
    pub tokens: crate::TokenCount,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// State of one flow run inside [`RunState`].
pub(crate) struct FlowRun {
    pub flow: Arc<LoadedFlow>,
    pub session_id: String,
    /// Per node: fields that replace parameters (input value, tweaks).
    pub overrides: Vec<Vec<Field>>,
    /// Per node, per output: the value it holds.
    pub values: Vec<Vec<Option<Value>>>,
    pub loops: HashMap<usize, loops::LoopState>,
    pub std_instance: Option<Arc<Node>>,
    pub custom_instances: HashMap<String, Arc<Node>>,
    /// Instances tool calls run in, by nesting depth and custom node type.
    pub tool_instances: HashMap<(usize, Option<String>), Arc<Node>>,
    /// How many tool calls are on the stack now.
    pub tool_depth: usize,
    pub failure: Option<RunError>,
    pub events: Vec<NodeEvent>,
}

impl FlowRun {
    /// Parameter `field` of node `node_id` as the flow sets it.
    pub fn param(&self, node_id: &str, field: &str) -> Option<&sandflow_flow_compiler::ir::ParamValue> {
        let node = self.flow.plan.nodes.iter().find(|n| n.id == node_id)?;
        node.params.iter().find(|p| p.name == field).map(|p| &p.value)
    }
}

impl Sandbox {
    /// Runs `flow` once on `request`.
    pub fn run_flow(&mut self, flow: &FlowComponent, request: &RunRequest) -> Result<RunOutcome, RunError> {
        let started = Instant::now();
        let fuel_before = self.fuel_consumed();
        let tokens_before = self.tokens();
        let loaded = flow.inner.clone();
        let overrides = request.overrides(&loaded.plan)?;
        let mut values: Vec<Vec<Option<Value>>> =
            loaded.plan.nodes.iter().map(|n| vec![None; n.outputs.len()]).collect();
        for (node, output, tools) in &loaded.tool_values {
            values[*node][*output] = Some(tools.clone());
        }
        self.store.data_mut().flow = Some(FlowRun {
            flow: loaded.clone(),
            session_id: request.session_id.clone(),
            overrides,
            values,
            loops: HashMap::new(),
            std_instance: None,
            custom_instances: HashMap::new(),
            tool_instances: HashMap::new(),
            tool_depth: 0,
            failure: None,
            events: Vec::new(),
        });
        let result = loaded
            .pre
            .instantiate(&mut self.store)
            .and_then(|instance| instance.sandflow_flow_schedule().call_run(&mut self.store));
        let run = self.store.data_mut().flow.take().expect("set above");
        let status = result.map_err(|e| self.classify(e))?;
        if let Some(failure) = run.failure {
            return Err(failure);
        }
        debug_assert!(status == Status::Completed);
        if !self.defer_history_writes {
            self.settle_history_writes()?;
        }
        Ok(RunOutcome {
            outputs: collect(&loaded, &run.values, |r| matches!(r, Role::ChatOutput | Role::TextOutput)),
            inputs: collect(&loaded, &run.values, |r| matches!(r, Role::ChatInput)),
            events: run.events,
            fuel: self.fuel_consumed() - fuel_before,
            tokens: crate::TokenCount {
                input: self.tokens().input - tokens_before.input,
                output: self.tokens().output - tokens_before.output,
            },
            elapsed: started.elapsed(),
        })
    }
}

impl Sandbox {
    /// Waits until the run's chat-history messages are stored.
    fn settle_history_writes(&mut self) -> Result<(), RunError> {
        let pending = self.take_history_writes();
        crate::capabilities::io::block_on(crate::capabilities::memory::settle_run(pending))
    }
}

fn collect(flow: &LoadedFlow, values: &[Vec<Option<Value>>], role: impl Fn(Role) -> bool) -> Vec<FlowOutput> {
    let plan = &flow.plan;
    let mut outputs = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if !role(node.role) {
            continue;
        }
        let Some(Some(value)) = values[i].first() else { continue };
        let source = flow.incoming[i]
            .iter()
            .map(|&e| &plan.edges[e])
            .find(|e| e.field == "input_value")
            .map(|e| &plan.nodes[e.from as usize])
            .map(|n| (n.id.clone(), n.display_name.clone()));
        outputs.push(FlowOutput {
            node_id: node.id.clone(),
            display_name: node.display_name.clone(),
            source,
            value: value.clone(),
        });
    }
    outputs
}
