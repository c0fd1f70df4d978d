//! The flow IR, called the plan: a typed, resolved graph plus its schedule.
//! It is what the compiled component carries and what the host executes
//! against: nodes by index, fields with their static parameters, edges
//! between outputs and fields, and the schedule of steps.

use crate::catalog::{Capability, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;

/// Version of the plan format. Bumped on any incompatible change.
pub const PLAN_FORMAT: u32 = 1;

/// A compiled flow's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT`] at compile time.
    pub format: u32,
    /// The flow's name.
    pub name: String,
    /// The flow's id in the export, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    /// The slug the run API also accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    /// Nodes, indexed by position.
    pub nodes: Vec<PlanNode>,
    /// Edges between node outputs and fields.
    pub edges: Vec<PlanEdge>,
    /// What runs, in which order, under which guards.
    pub schedule: Vec<Step>,
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Node id in the export.
    pub id: String,
    /// Display name in the export.
    pub display_name: String,
    /// The Langflow component key.
    pub component: String,
    /// The node implementation: a standard node name or a custom node's name.
    pub node: String,
    /// Part played in the schedule.
    pub role: Role,
    /// Invoked by an agent as a tool rather than by the schedule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tool: bool,
    /// Langflow's `frozen`: the result may be reused across runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
    /// Static field values (fields fed by an edge are left out).
    pub params: Vec<Param>,
    /// Fields the export hides (`show: false`): Langflow builds the
    /// component with its own defaults for them, so they are not in
    /// `params` and tweaks to them are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<String>,
    /// Outputs, in the order edges and guards index them.
    pub outputs: Vec<Port>,
    /// Host capabilities the node uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
}

/// A static field value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Field name.
    pub name: String,
    /// Literal value or secret reference.
    #[serde(flatten)]
    pub value: ParamValue,
}

/// What a field holds before the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    /// A literal from the export.
    Value(Value),
    /// A global variable resolved by the host at run time (never inlined).
    Secret(String),
}

/// A named, typed output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// Output name.
    pub name: String,
    /// Langflow types, canonical names.
    pub types: Vec<String>,
}

/// An edge from an output to a field (or, for a loop, back to its `item` output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEdge {
    /// Source node index.
    pub from: u32,
    /// Index into the source node's outputs.
    pub output: u32,
    /// Target node index.
    pub to: u32,
    /// Target field name (for a feedback edge: the loop output it returns to).
    pub field: String,
    /// Returns a loop body's result to its Loop node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub feedback: bool,
}

/// One step of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Run a node, provided every guard's output holds a value.
    Run {
        /// Node index.
        node: u32,
        /// Outputs that must hold a value (branches a router may stop).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        guards: Vec<Guard>,
    },
    /// Repeat `body` while the Loop node has items.
    Loop {
        /// The Loop node's index (already run once to take its items).
        node: u32,
        /// Steps run for every item.
        body: Vec<Step>,
    },
}

/// An output a step depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Guard {
    /// Node index.
    pub node: u32,
    /// Output index.
    pub output: u32,
}

impl Plan {
    /// Indices of the nodes that take the run's input.
    pub fn inputs(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.role, Role::ChatInput | Role::TextInput | Role::Webhook))
            .map(|(i, _)| i)
    }

    /// Indices of the nodes whose messages answer the run.
    pub fn outputs(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.role, Role::ChatOutput | Role::TextOutput))
            .map(|(i, _)| i)
    }

    /// Capabilities used by any node, sorted, without repeats.
    pub fn capabilities(&self) -> Vec<Capability> {
        let mut caps: Vec<Capability> = self.nodes.iter().flat_map(|n| n.capabilities.iter().copied()).collect();
        caps.sort();
        caps.dedup();
        caps
    }

    /// The global variables the nodes' fields name, sorted, without
    /// repeats.
    pub fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| &n.params)
            .filter_map(|p| match &p.value {
                ParamValue::Secret(name) => Some(name.clone()),
                ParamValue::Value(_) => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A stable, readable dump for golden tests and `sandflow inspect`.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "flow {:?}", self.name);
        for (i, n) in self.nodes.iter().enumerate() {
            let mut flags = String::new();
            if n.tool {
                flags.push_str(" tool");
            }
            if n.frozen {
                flags.push_str(" frozen");
            }
            let _ = writeln!(out, "node {i} {} {:?} = {} ({:?}){flags}", n.id, n.display_name, n.node, n.role);
            for p in &n.params {
                match &p.value {
                    ParamValue::Secret(var) => {
                        let _ = writeln!(out, "  param {} = secret {var}", p.name);
                    }
                    ParamValue::Value(v) => {
                        let mut text = v.to_string();
                        if text.len() > 60 {
                            let cut = (0..=57).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                            text.truncate(cut);
                            text.push('…');
                        }
                        let _ = writeln!(out, "  param {} = {text}", p.name);
                    }
                }
            }
            for (k, o) in n.outputs.iter().enumerate() {
                let _ = writeln!(out, "  out {k} {} : {}", o.name, o.types.join("|"));
            }
        }
        for e in &self.edges {
            let from = &self.nodes[e.from as usize];
            let out_name = from.outputs.get(e.output as usize).map_or("?", |o| o.name.as_str());
            let arrow = if e.feedback { "~>" } else { "->" };
            let _ = writeln!(out, "edge {}.{out_name} {arrow} {}.{}", e.from, e.to, e.field);
        }
        out.push_str("schedule\n");
        dump_steps(&mut out, &self.schedule, 1);
        out
    }
}

fn dump_steps(out: &mut String, steps: &[Step], depth: usize) {
    let pad = "  ".repeat(depth);
    for step in steps {
        match step {
            Step::Run { node, guards } if guards.is_empty() => {
                let _ = writeln!(out, "{pad}run {node}");
            }
            Step::Run { node, guards } => {
                let g: Vec<String> = guards.iter().map(|g| format!("{}.{}", g.node, g.output)).collect();
                let _ = writeln!(out, "{pad}run {node} if {}", g.join(" & "));
            }
            Step::Loop { node, body } => {
                let _ = writeln!(out, "{pad}loop {node}");
                dump_steps(out, body, depth + 1);
            }
        }
    }
}

/// A name as a tool name models accept: `[A-Za-z0-9_-]`, anything else `_`.
pub fn tool_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}
