//! Nodes as tools: what the schedule hands an agent (each tool node's
//! description, from its `tools_metadata`), and `sandflow:host/tools.call`,
//! which runs a tool node on the arguments a model chose.
//!
//! A tool call runs the node in its own instance (an instance already on the
//! call stack cannot be re-entered), in the same store: the run's fuel,
//! memory and deadline cover tools too. Only nodes this flow wires into a
//! `tools` field can be called; nesting (an agent used as another agent's
//! tool) is bounded by [`MAX_DEPTH`].

use super::{NodeEvent, invocation, values};
use crate::bindings::node::Node;
use crate::bindings::node::sandflow::host::types::CapabilityError;
use crate::library::Binding;
use crate::sandbox::RunState;
use crate::{Tool, Value};
use sandflow_flow_compiler::ir::{ParamValue, PlanNode};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

/// The output a node offers itself through as a tool.
pub const TOOL_OUTPUT: &str = sandflow_flow_compiler::lower::TOOL_OUTPUT;
/// How deeply tool calls may nest (an agent calling an agent calling …).
pub const MAX_DEPTH: usize = 4;

const TOOLS: &str = "sandflow:host/tools@0.1.0";

/// Adds `sandflow:host/tools` to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    let mut tools = linker.instance(TOOLS)?;
    tools.func_wrap(
        "call",
        |store: StoreContextMut<'_, RunState>, (node_id, name, arguments): (String, String, String)| {
            call(store, &node_id, &name, &arguments).map(|r| (r,))
        },
    )?;
    Ok(())
}

/// The tools `node` offers: one per enabled entry of its `tools_metadata`,
/// or one named after the node when it has none.
pub fn describe(node: &PlanNode) -> Vec<Tool> {
    let metadata = node.params.iter().find(|p| p.name == "tools_metadata").and_then(|p| match &p.value {
        ParamValue::Value(Json::Array(entries)) => Some(entries.clone()),
        _ => None,
    });
    let tool = |name: String, description: String, parameters: Json| Tool {
        name,
        description,
        node_id: node.id.clone(),
        parameters: parameters.to_string(),
    };
    match metadata {
        Some(entries) if !entries.is_empty() => entries
            .iter()
            .filter(|e| e["status"].as_bool() != Some(false))
            .map(|e| {
                let args = e["args"].as_object().cloned().unwrap_or_default();
                let required: Vec<&String> = args.keys().collect();
                let properties: Map<String, Json> = args
                    .iter()
                    .map(|(k, v)| {
                        let mut schema = v.clone();
                        if let Some(object) = schema.as_object_mut() {
                            object.remove("default");
                        }
                        (k.clone(), schema)
                    })
                    .collect();
                tool(
                    e["name"].as_str().unwrap_or(&node.component).to_owned(),
                    e["description"].as_str().unwrap_or(&node.display_name).to_owned(),
                    json!({"type": "object", "properties": properties, "required": required}),
                )
            })
            .collect(),
        _ => vec![tool(
            sandflow_flow_compiler::ir::tool_name(&node.display_name),
            node.display_name.clone(),
            json!({"type": "object", "properties": {"input_value": {"type": "string"}}, "required": ["input_value"]}),
        )],
    }
}

fn call(
    mut store: StoreContextMut<'_, RunState>,
    node_id: &str,
    name: &str,
    arguments: &str,
) -> wasmtime::Result<Result<String, CapabilityError>> {
    let Some(run) = store.data().flow.as_ref() else {
        return Ok(Err(CapabilityError::NotConfigured("tools can only be called while a flow runs".into())));
    };
    let flow = run.flow.clone();
    let Some(index) = flow.plan.nodes.iter().position(|n| n.id == node_id) else {
        return Ok(Err(CapabilityError::Denied(format!("this flow has no tool node `{node_id}`"))));
    };
    let Binding::Tool(runner) = &flow.bindings[index] else {
        return Ok(Err(CapabilityError::Denied(format!("node `{node_id}` is not wired as a tool in this flow"))));
    };
    let offered = describe(&flow.plan.nodes[index]);
    let Some(k) = offered.iter().position(|t| t.name == name) else {
        let names: Vec<&str> = offered.iter().map(|t| t.name.as_str()).collect();
        return Ok(Err(CapabilityError::Invalid(format!(
            "node `{node_id}` has no tool `{name}`; it offers: {}",
            names.join(", ")
        ))));
    };
    let arguments: Map<String, Json> =
        match serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments }) {
            Ok(Json::Object(object)) => object,
            _ => {
                return Ok(Err(CapabilityError::Invalid(format!(
                    "the arguments of tool `{name}` must be a JSON object, got `{}`",
                    arguments.chars().take(200).collect::<String>()
                ))));
            }
        };
    let node = &flow.plan.nodes[index];
    let outputs: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).filter(|n| *n != TOOL_OUTPUT).collect();
    let Some(output) = outputs.get(k).or(outputs.first()).map(|o| (*o).to_owned()) else {
        return Ok(Err(CapabilityError::Invalid(format!("node `{node_id}` produces nothing a tool could return"))));
    };
    let depth = run.tool_depth;
    if depth >= MAX_DEPTH {
        return Ok(Err(CapabilityError::Denied(format!("tool calls nest deeper than {MAX_DEPTH} levels"))));
    }

    let (component, instance) = match runner.as_ref() {
        Binding::Std(type_name) => (type_name.clone(), instance(&mut store, depth, None)?),
        Binding::Custom(component, type_name) => {
            (type_name.clone(), instance(&mut store, depth, Some((component, type_name)))?)
        }
        Binding::Loop | Binding::Tool(_) => {
            return Ok(Err(CapabilityError::Invalid(format!("node `{node_id}` cannot run as a tool"))));
        }
    };
    let run = store.data().flow.as_ref().ok_or_else(not_running)?;
    let mut invocation = invocation::build(&flow, run, index, &component);
    invocation.fields.retain(|f| !arguments.contains_key(&f.name));
    for (name, value) in &arguments {
        invocation.fields.extend(values::fields(name, value));
    }
    invocation.wanted = vec![output.clone()];

    let started = Instant::now();
    let caller = std::mem::replace(&mut store.data_mut().caps.node_id, node_id.to_owned());
    set_depth(&mut store, depth + 1)?;
    let result = instance.sandflow_node_handler().call_run(&mut store, &invocation);
    set_depth(&mut store, depth)?;
    store.data_mut().caps.node_id = caller;
    let result = result?;
    let run = store.data_mut().flow.as_mut().ok_or_else(not_running)?;
    run.events.push(NodeEvent { node_id: node_id.to_owned(), completed: result.is_ok(), elapsed: started.elapsed() });
    Ok(match result {
        Ok(outputs) => {
            Ok(outputs.into_iter().find(|o| o.name == output).map(|o| as_text(&o.value)).unwrap_or_default())
        }
        Err(crate::NodeError::InvalidInput(m) | crate::NodeError::Failed(m)) => {
            Err(CapabilityError::Failed(format!("tool `{name}` failed: {m}")))
        }
    })
}

fn not_running() -> wasmtime::Error {
    wasmtime::format_err!("a tool was called outside a flow run")
}

fn set_depth(store: &mut StoreContextMut<'_, RunState>, depth: usize) -> wasmtime::Result<()> {
    store.data_mut().flow.as_mut().ok_or_else(not_running)?.tool_depth = depth;
    Ok(())
}

/// The instance tool calls at `depth` use: one per depth and component, so
/// no instance is entered twice and repeated calls reuse it.
fn instance(
    store: &mut StoreContextMut<'_, RunState>,
    depth: usize,
    custom: Option<(&crate::NodeComponent, &String)>,
) -> wasmtime::Result<Arc<Node>> {
    let key = (depth, custom.map(|(_, type_name)| type_name.clone()));
    if let Some(found) = store.data().flow.as_ref().and_then(|r| r.tool_instances.get(&key).cloned()) {
        return Ok(found);
    }
    let pre = match custom {
        Some((component, _)) => component.pre.clone(),
        None => store.data().std_library.pre.clone(),
    };
    let created = Arc::new(pre.instantiate(&mut *store)?);
    store.data_mut().flow.as_mut().ok_or_else(not_running)?.tool_instances.insert(key, created.clone());
    Ok(created)
}

/// A tool's result as the model reads it: a message's text, Data and
/// tables as JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::None => String::new(),
        Value::Text(t) | Value::Json(t) => t.clone(),
        Value::Message(m) => m.text.clone(),
        Value::Data(d) => d.data.clone(),
        Value::Table(t) => {
            let rows: Vec<Json> = t.rows.iter().map(|r| serde_json::from_str(r).unwrap_or(Json::Null)).collect();
            Json::Array(rows).to_string()
        }
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Tools(_) | Value::LanguageModel(_) | Value::EmbeddingModel(_) => String::new(),
    }
}
