//! Lowering: the parsed Langflow model becomes the plan. Every component type
//! is resolved against the catalog (or a published custom node), every edge
//! against the outputs and fields of its ends, and every field to a literal,
//! a secret reference or an edge. Problems are collected, never thrown.

use crate::CompileOptions;
use crate::catalog::{self, Role};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::ir::{PLAN_FORMAT, Param, ParamValue, Plan, PlanEdge, PlanNode, Port};
use crate::langflow::{Edge, Field, Flow, Node};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The output a node exposes when it is used as an agent's tool.
pub const TOOL_OUTPUT: &str = "component_as_tool";

/// Lowers `flow`; returns the plan without its schedule, or `None` when a
/// problem leaves nothing sensible to schedule.
pub fn lower(flow: &Flow, options: &CompileOptions, diags: &mut Diagnostics) -> Option<Plan> {
    let index = index_nodes(flow, diags);
    let mut nodes: Vec<PlanNode> = flow.nodes.iter().map(|n| resolve_node(n, options, diags)).collect();
    let edges = resolve_edges(flow, &index, &nodes, diags);

    check_single_chat_input(flow, &nodes, diags);
    mark_tools(&mut nodes, &edges);
    for (i, node) in flow.nodes.iter().enumerate() {
        if nodes[i].node.is_empty() {
            continue; // unknown component: its fields mean nothing to us
        }
        // Counted on the export's edges, so an edge dropped for another
        // error (an unknown source, say) does not also report its field as missing.
        let fed: HashSet<&str> =
            flow.edges.iter().filter(|e| e.target == node.id && !e.loop_feedback).map(|e| e.field.as_str()).collect();
        nodes[i].params = params(node, &fed, nodes[i].tool, diags);
        nodes[i].hidden = node.fields.iter().filter(|f| is_hidden(f)).map(|f| f.name.clone()).collect();
    }
    if nodes.is_empty() {
        diags.push(
            Diagnostic::error("empty-flow", "/data/nodes", "the flow has no components")
                .help("add at least a Chat Input and a Chat Output in Langflow and export again"),
        );
    } else if !nodes.iter().any(|n| matches!(n.role, Role::ChatOutput | Role::TextOutput)) {
        diags.push(
            Diagnostic::warning("no-output", "/data/nodes", "the flow has no Chat Output or Text Output")
                .help("runs of this flow answer with no message; add a Chat Output to return one"),
        );
    }
    Some(Plan {
        format: PLAN_FORMAT,
        name: flow.name.clone(),
        flow_id: flow.id.clone(),
        endpoint_name: flow.endpoint_name.clone(),
        nodes,
        edges,
        schedule: Vec::new(),
    })
}

fn index_nodes<'a>(flow: &'a Flow, diags: &mut Diagnostics) -> HashMap<&'a str, usize> {
    let mut index = HashMap::with_capacity(flow.nodes.len());
    for (i, node) in flow.nodes.iter().enumerate() {
        if index.insert(node.id.as_str(), i).is_some() {
            diags.push(
                Diagnostic::error("duplicate-id", &node.pointer, format!("two nodes have the id `{}`", node.id))
                    .node(&node.id, &node.display_name)
                    .help("give every node a unique id (duplicate the component in Langflow instead of editing ids)"),
            );
        }
    }
    index
}

fn resolve_node(node: &Node, options: &CompileOptions, diags: &mut Diagnostics) -> PlanNode {
    let mut plan_node = PlanNode {
        id: node.id.clone(),
        display_name: node.display_name.clone(),
        component: node.type_name.clone(),
        node: String::new(),
        role: Role::Step,
        tool: false,
        frozen: node.frozen,
        params: Vec::new(),
        hidden: Vec::new(),
        outputs: Vec::new(),
        capabilities: Vec::new(),
    };
    if let Some(component) = catalog::lookup(&node.type_name) {
        plan_node.node = component.node.to_owned();
        plan_node.role = component.role;
        plan_node.capabilities = component.capabilities.to_vec();
        plan_node.outputs = component
            .outputs
            .iter()
            .map(|(name, types)| Port { name: (*name).to_owned(), types: canonical(types.iter().copied()) })
            .collect();
    } else if let Some(custom) = options.custom_nodes.get(&node.type_name) {
        plan_node.node = custom.clone();
        plan_node.outputs = node
            .outputs
            .iter()
            .map(|o| Port { name: o.name.clone(), types: canonical(o.types.iter().map(String::as_str)) })
            .collect();
    } else {
        let grouped = node.group.as_ref().map(|g| format!(" (inside group `{g}`)")).unwrap_or_default();
        diags.push(
            Diagnostic::error(
                "unknown-component",
                format!("{}/data/type", node.pointer),
                format!("component type `{}` is not in Sandflow's node library{grouped}", node.type_name),
            )
            .node(&node.id, &node.display_name)
            .help(format!(
                "publish a custom node named `{}` (`sandflow node publish`), or replace it in Langflow with a supported component",
                node.type_name
            )),
        );
    }
    plan_node
}

fn canonical<'a>(types: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let c = catalog::canonical_type(t).to_owned();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn resolve_edges(
    flow: &Flow,
    index: &HashMap<&str, usize>,
    nodes: &[PlanNode],
    diags: &mut Diagnostics,
) -> Vec<PlanEdge> {
    let mut edges = Vec::with_capacity(flow.edges.len());
    let mut seen_fields: HashMap<(usize, &str), &Edge> = HashMap::new();
    for edge in &flow.edges {
        let (Some(&from), Some(&to)) = (index.get(edge.source.as_str()), index.get(edge.target.as_str())) else {
            let missing = if index.contains_key(edge.source.as_str()) { &edge.target } else { &edge.source };
            diags.push(
                Diagnostic::error(
                    "dangling-edge",
                    &edge.pointer,
                    format!("an edge points at node `{missing}`, which is not in the flow"),
                )
                .help("delete the edge, or restore the node it connects, and export again"),
            );
            continue;
        };
        let (source, target) = (&flow.nodes[from], &flow.nodes[to]);
        let (source_plan, target_plan) = (&nodes[from], &nodes[to]);
        if source_plan.node.is_empty() || target_plan.node.is_empty() {
            continue; // already reported as an unknown component
        }
        let Some(output) = resolve_output(edge, source, source_plan, diags) else { continue };
        let output_types = &source_plan.outputs[output].types;
        if edge.loop_feedback {
            if target_plan.role != Role::Loop || !target.output(&edge.field).is_some_and(|o| o.allows_loop) {
                diags.push(
                    Diagnostic::error(
                        "bad-feedback",
                        &edge.pointer,
                        format!(
                            "an edge feeds output `{}` of `{}`, which takes no loop feedback",
                            edge.field, target.id
                        ),
                    )
                    .node(&target.id, &target.display_name)
                    .field(&edge.field)
                    .help("only a Loop component's `item` output takes a feedback edge from the end of the loop body"),
                );
                continue;
            }
        } else {
            let Some(field) = target.field(&edge.field) else {
                diags.push(
                    Diagnostic::error(
                        "unknown-field",
                        &edge.pointer,
                        format!("an edge feeds field `{}` of `{}`, which has no such field", edge.field, target.id),
                    )
                    .node(&target.id, &target.display_name)
                    .field(&edge.field)
                    .help("reconnect the edge to an existing field in Langflow and export again"),
                );
                continue;
            };
            check_types(edge, field, output_types, source, target, diags);
            if let Some(previous) = seen_fields.insert((to, edge.field.as_str()), edge)
                && !field.list
                && !field.input_types.iter().any(|t| t == "Tool")
            {
                diags.push(
                    Diagnostic::error(
                        "field-taken",
                        &edge.pointer,
                        format!(
                            "field `{}` of `{}` takes one value but two edges feed it (from `{}` and `{}`)",
                            edge.field, target.id, previous.source, edge.source
                        ),
                    )
                    .node(&target.id, &target.display_name)
                    .field(&edge.field)
                    .help("remove one of the edges"),
                );
                continue;
            }
        }
        edges.push(PlanEdge {
            from: from as u32,
            output: output as u32,
            to: to as u32,
            field: edge.field.clone(),
            feedback: edge.loop_feedback,
        });
    }
    edges
}

fn resolve_output(edge: &Edge, source: &Node, plan: &PlanNode, diags: &mut Diagnostics) -> Option<usize> {
    if edge.output.is_empty() {
        // Pre-1.0 edges name no output: those components have exactly one.
        return (!plan.outputs.is_empty()).then_some(0);
    }
    let found = plan.outputs.iter().position(|o| o.name == edge.output);
    if found.is_none() {
        let known: Vec<&str> = plan.outputs.iter().map(|o| o.name.as_str()).collect();
        diags.push(
            Diagnostic::error(
                "unknown-output",
                &edge.pointer,
                format!(
                    "`{}` ({}) has no output `{}` in Sandflow's node library",
                    source.id, source.type_name, edge.output
                ),
            )
            .node(&source.id, &source.display_name)
            .field(&edge.output)
            .help(format!("connect one of its outputs instead: {}", known.join(", "))),
        );
    }
    found
}

fn check_types(
    edge: &Edge,
    field: &Field,
    output_types: &[String],
    source: &Node,
    target: &Node,
    diags: &mut Diagnostics,
) {
    let accepted: &[String] = if field.input_types.is_empty() { &edge.input_types } else { &field.input_types };
    if accepted.is_empty() || output_types.is_empty() {
        return;
    }
    if output_types.iter().any(|o| accepted.iter().any(|a| catalog::same_type(o, a))) {
        return;
    }
    diags.push(
        Diagnostic::error(
            "type-mismatch",
            &edge.pointer,
            format!(
                "`{}` produces {} but field `{}` of `{}` accepts {}",
                source.id,
                output_types.join("/"),
                field.name,
                target.id,
                accepted.join("/")
            ),
        )
        .node(&target.id, &target.display_name)
        .field(&field.name)
        .help("insert a converter (Type Convert, Parser) between them, or connect a matching output"),
    );
}

fn check_single_chat_input(flow: &Flow, nodes: &[PlanNode], diags: &mut Diagnostics) {
    let chat_inputs: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].role == Role::ChatInput).collect();
    for &i in chat_inputs.iter().skip(1) {
        let node = &flow.nodes[i];
        diags.push(
            Diagnostic::error("second-chat-input", &node.pointer, "Only one chat input is allowed in the graph")
                .node(&node.id, &node.display_name)
                .help(format!(
                    "remove this Chat Input or `{}`; use a Text Input for extra values",
                    flow.nodes[chat_inputs[0]].id
                )),
        );
    }
}

/// A node whose only outgoing edges are its tool output is run by an agent,
/// not by the schedule.
fn mark_tools(nodes: &mut [PlanNode], edges: &[PlanEdge]) {
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut outgoing = edges.iter().filter(|e| e.from as usize == i).peekable();
        if outgoing.peek().is_none() {
            continue;
        }
        node.tool = outgoing.all(|e| node.outputs[e.output as usize].name == TOOL_OUTPUT);
    }
}

fn params(node: &Node, fed: &HashSet<&str>, tool: bool, diags: &mut Diagnostics) -> Vec<Param> {
    let mut params = Vec::with_capacity(node.fields.len());
    for field in &node.fields {
        if fed.contains(field.name.as_str()) || is_hidden(field) {
            continue;
        }
        if field.load_from_db {
            if let Some(param) = secret(node, field, diags) {
                params.push(param);
            }
            continue;
        }
        if field.required && field.show && is_empty(&field.value) && !tool {
            missing_required(node, field, diags);
        }
        if field.input_class.as_deref() == Some("SecretStrInput") && !is_empty(&field.value) {
            diags.push(
                Diagnostic::warning(
                    "literal-secret",
                    &field.pointer,
                    format!("field `{}` holds a credential written into the flow", field.name),
                )
                .node(&node.id, &node.display_name)
                .field(&field.name)
                .help("store it as a global variable and reference it, so buyers of the flow never see it"),
            );
        }
        params.push(Param { name: field.name.clone(), value: ParamValue::Value(field.value.clone()) });
    }
    params
}

/// Langflow's `should_skip_field`: a field the export does not show
/// (`show` false or absent), except `code`, is not a parameter; the
/// component keeps its own default for it, whatever value the export holds.
fn is_hidden(field: &Field) -> bool {
    !field.show && field.name != "code"
}

fn secret(node: &Node, field: &Field, diags: &mut Diagnostics) -> Option<Param> {
    match &field.value {
        Value::String(var) if !var.trim().is_empty() => {
            Some(Param { name: field.name.clone(), value: ParamValue::Secret(var.trim().to_owned()) })
        }
        Value::String(_) | Value::Null if is_credential(field) => {
            diags.push(
                Diagnostic::warning(
                    "unset-secret",
                    &field.pointer,
                    format!("credential field `{}` names no global variable", field.name),
                )
                .node(&node.id, &node.display_name)
                .field(&field.name)
                .help("runs use the credential the tenant configured for this provider; name a global variable to pick another"),
            );
            None
        }
        other => {
            diags.push(
                Diagnostic::error(
                    "unset-secret",
                    &field.pointer,
                    format!("field `{}` reads a global variable but names none (value: {other})", field.name),
                )
                .node(&node.id, &node.display_name)
                .field(&field.name)
                .help("set the field to the name of a global variable, e.g. `OPENAI_API_KEY`, or turn off \"load from database\""),
            );
            None
        }
    }
}

fn is_credential(field: &Field) -> bool {
    field.input_class.as_deref() == Some("SecretStrInput")
        || field.name.contains("api_key")
        || field.name.contains("token")
}

fn missing_required(node: &Node, field: &Field, diags: &mut Diagnostics) {
    // Fields the tenant's configuration supplies at run time: the model, a
    // provider credential, the knowledge base or memory to search.
    let from_tenant = field.kind == "model"
        || field.input_class.as_deref() == Some("SecretStrInput")
        || field.input_class.as_deref() == Some("DropdownInput");
    if from_tenant {
        diags.push(
            Diagnostic::warning("tenant-supplied", &field.pointer, format!("required field `{}` is empty", field.name))
                .node(&node.id, &node.display_name)
                .field(&field.name)
                .help("runs use the tenant's configured default for it; set a value to fix one"),
        );
        return;
    }
    let help = if field.input_types.is_empty() {
        format!("set a value for `{}` in Langflow and export again", field.name)
    } else {
        format!("connect an edge into `{}` ({}) or set its value", field.name, field.input_types.join("/"))
    };
    diags.push(
        Diagnostic::error(
            "missing-required",
            &field.pointer,
            format!("required field `{}` has no value and no edge", field.name),
        )
        .node(&node.id, &node.display_name)
        .field(&field.name)
        .help(help),
    );
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
