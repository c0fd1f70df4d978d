//! What a caller asks of a run: the input, its type, the session and tweaks.

use crate::error::RunError;
use crate::{Field, Value};
use sandflow_flow_compiler::catalog::Role;
use sandflow_flow_compiler::ir::Plan;

/// Which input nodes receive `input_value` (Langflow's `input_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InputType {
    /// Chat Input nodes.
    #[default]
    Chat,
    /// Text Input nodes.
    Text,
    /// Both.
    Any,
}

/// One run's request.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The message; `None` keeps each input node's own value.
    pub input_value: Option<String>,
    /// Which input nodes receive it.
    pub input_type: InputType,
    /// The conversation; Langflow uses the flow id when the caller gives none.
    pub session_id: String,
    /// `{node id or display name: {field: value}}` overriding parameters.
    pub tweaks: serde_json::Map<String, serde_json::Value>,
}

impl RunRequest {
    /// Per node, the fields that replace its parameters for this run.
    pub(crate) fn overrides(&self, plan: &Plan) -> Result<Vec<Vec<Field>>, RunError> {
        let mut overrides = vec![Vec::new(); plan.nodes.len()];
        for (key, fields) in &self.tweaks {
            let matching: Vec<usize> = (0..plan.nodes.len())
                .filter(|&i| plan.nodes[i].id == *key || plan.nodes[i].display_name == *key)
                .collect();
            if matching.is_empty() {
                return Err(RunError::Request(format!(
                    "tweaks name `{key}`, which is neither the id nor the display name of a node of this flow"
                )));
            }
            let serde_json::Value::Object(fields) = fields else {
                return Err(RunError::Request(format!("tweaks for `{key}` must be an object of field values")));
            };
            for i in matching {
                // As in Langflow, a tweak changes nothing of a field the
                // export hides, nor of one an edge feeds (the edge's value
                // wins): a caller cannot skip the node upstream of it, a
                // seller's guard or sanitizer, by tweaking what it feeds.
                let fed = |name: &str| plan.edges.iter().any(|e| e.to as usize == i && !e.feedback && e.field == name);
                let kept = fields.iter().filter(|(name, _)| !plan.nodes[i].hidden.contains(*name) && !fed(name));
                for (name, value) in kept {
                    overrides[i].extend(super::values::fields(name, value));
                }
            }
        }
        if let Some(input) = &self.input_value {
            for (i, node) in plan.nodes.iter().enumerate() {
                let takes = match self.input_type {
                    InputType::Chat => node.role == Role::ChatInput,
                    InputType::Text => node.role == Role::TextInput,
                    InputType::Any => matches!(node.role, Role::ChatInput | Role::TextInput),
                };
                if takes {
                    overrides[i].retain(|f: &Field| f.name != "input_value");
                    overrides[i].push(Field { name: "input_value".into(), value: Value::Text(input.clone()) });
                }
            }
        }
        Ok(overrides)
    }
}
