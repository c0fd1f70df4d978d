//! The Langflow export format, read tolerantly: unknown fields are ignored,
//! every piece keeps the JSON pointer it came from, and shape problems become
//! diagnostics instead of failures so a seller sees all of them at once.
//!
//! Handles the current 1.x format (`œ`-encoded handles with `edge.data`), the
//! pre-1.0 format (edges without `data`, `Type|id|Base…` handle strings) and
//! grouped nodes (a node whose `data.node.flow` holds an inner flow).

use crate::diagnostic::{Diagnostic, Diagnostics, escape_token};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Largest export accepted, in bytes. The largest starter project is well
/// under 1 MiB; this bound keeps a hostile upload from holding memory.
pub const MAX_FLOW_BYTES: usize = 16 * 1024 * 1024;

/// Most components in one flow, group members included, and most
/// connections. Starter projects have at most a dozen of each; these bound
/// the compiler's passes, which look at a node's edges, on hostile uploads.
pub const MAX_NODES: usize = 1_000;
/// See [`MAX_NODES`].
pub const MAX_EDGES: usize = 5_000;
/// Longest node id, and longest display name kept (longer ones are cut).
pub const MAX_NAME_CHARS: usize = 256;

/// A parsed Langflow export.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// The flow's id, when the export has one.
    pub id: Option<String>,
    /// The flow's name.
    pub name: String,
    /// The flow's description.
    pub description: String,
    /// The slug the run API also accepts, when set.
    pub endpoint_name: Option<String>,
    /// Nodes, groups expanded, notes dropped.
    pub nodes: Vec<Node>,
    /// Edges, handles decoded, group proxies resolved.
    pub edges: Vec<Edge>,
}

/// One component instance.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Node id, e.g. `ChatInput-b6UCc`.
    pub id: String,
    /// The component key (`data.type`), e.g. `ChatInput`.
    pub type_name: String,
    /// Display name shown in Langflow.
    pub display_name: String,
    /// Fields of `data.node.template`, in document order (`code` and `_type` left out).
    pub fields: Vec<Field>,
    /// The component's outputs.
    pub outputs: Vec<Output>,
    /// Prompt variables (`custom_fields.template`).
    pub template_variables: Vec<String>,
    /// `frozen: true`: Langflow reuses the cached result.
    pub frozen: bool,
    /// The group node this node was expanded from.
    pub group: Option<String>,
    /// JSON pointer of the node object.
    pub pointer: String,
}

impl Node {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// One field of a node's template.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// Template key.
    pub name: String,
    /// Langflow field type (`str`, `bool`, `int`, `prompt`, `model`, …).
    pub kind: String,
    /// The field's value in the export.
    pub value: Value,
    /// Handle types the field accepts; empty when it takes no edge.
    pub input_types: Vec<String>,
    /// The field collects several values.
    pub list: bool,
    /// The component cannot build without it.
    pub required: bool,
    /// Shown in the node (hidden fields belong to other modes of the component).
    pub show: bool,
    /// `value` names a global variable (a secret), not a literal.
    pub load_from_db: bool,
    /// Langflow's input class (`MessageTextInput`, `SecretStrInput`, …).
    pub input_class: Option<String>,
    /// JSON pointer of the field object.
    pub pointer: String,
}

/// One output of a node.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Output name, e.g. `message`.
    pub name: String,
    /// Types produced, e.g. `["Message"]`.
    pub types: Vec<String>,
    /// The Python method that produces it.
    pub method: Option<String>,
    /// A Loop's `item` output, which takes the feedback edge.
    pub allows_loop: bool,
    /// JSON pointer of the output object.
    pub pointer: String,
}

/// One edge, decoded.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    /// Source node id.
    pub source: String,
    /// Source output name; empty for pre-1.0 edges, whose nodes have one output.
    pub output: String,
    /// Types the source output produces.
    pub output_types: Vec<String>,
    /// Target node id.
    pub target: String,
    /// Target field, or for a loop feedback edge, the target output (`item`).
    pub field: String,
    /// Types the target field accepts.
    pub input_types: Vec<String>,
    /// The edge feeds a Loop's `item` output back (its target handle has the shape of an output).
    pub loop_feedback: bool,
    /// JSON pointer of the edge object.
    pub pointer: String,
}

/// Parses an export. Returns the flow (possibly partial) and every problem found.
pub fn parse(source: &[u8]) -> (Option<Flow>, Diagnostics) {
    let mut diags = Diagnostics::default();
    if source.len() > MAX_FLOW_BYTES {
        diags.push(
            Diagnostic::error(
                "too-large",
                "",
                format!("the flow is {} bytes; the largest accepted is {MAX_FLOW_BYTES} bytes", source.len()),
            )
            .help("export the flow again without embedded files or large cached results"),
        );
        return (None, diags);
    }
    let value: Value = match serde_json::from_slice(source) {
        Ok(v) => v,
        Err(e) => {
            let help = if e.to_string().contains("recursion limit") {
                "the document nests too deeply to be a Langflow export; upload the file Langflow's Export gives"
            } else {
                "upload the JSON file that Langflow's Export (or the API's /api/v1/flows/{id}) gives"
            };
            diags.push(
                Diagnostic::error(
                    "not-json",
                    "",
                    format!("not valid JSON: {e} (line {}, column {})", e.line(), e.column()),
                )
                .help(help),
            );
            return (None, diags);
        }
    };
    let flow = parse_value(&value, &mut diags);
    (flow, diags)
}

/// Parses an already decoded export.
pub fn parse_value(value: &Value, diags: &mut Diagnostics) -> Option<Flow> {
    let Some(top) = value.as_object() else {
        diags.push(
            Diagnostic::error("wrong-shape", "", format!("the flow must be a JSON object, found {}", kind_of(value)))
                .help("upload a Langflow export: an object with `data.nodes` and `data.edges`"),
        );
        return None;
    };
    // Langflow accepts the whole export or its `data` object on its own.
    let (graph, base) = match top.get("data") {
        Some(Value::Object(data)) => (data, "/data".to_owned()),
        Some(other) => {
            diags.push(
                Diagnostic::error(
                    "wrong-shape",
                    "/data",
                    format!("`data` must be an object, found {}", kind_of(other)),
                )
                .help("`data` holds `nodes` and `edges`"),
            );
            return None;
        }
        None if top.contains_key("nodes") => (top, String::new()),
        None => {
            diags.push(
                Diagnostic::error("wrong-shape", "", "no `data` object with `nodes` and `edges`")
                    .help("upload the JSON file that Langflow's Export gives"),
            );
            return None;
        }
    };
    let mut flow = Flow {
        id: top.get("id").and_then(Value::as_str).map(str::to_owned),
        name: top.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        description: top.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
        endpoint_name: top.get("endpoint_name").and_then(Value::as_str).map(str::to_owned),
        ..Flow::default()
    };
    let mut outputs = HashMap::new();
    read_graph(graph, &base, None, &mut flow, &mut outputs, diags);
    resolve_group_sources(&mut flow.edges, &outputs);
    Some(flow)
}

/// Group id → the inner node that answers for the group.
type GroupOutputs = HashMap<String, String>;

fn read_graph(
    graph: &Map<String, Value>,
    base: &str,
    group: Option<&str>,
    flow: &mut Flow,
    outputs: &mut GroupOutputs,
    diags: &mut Diagnostics,
) {
    let nodes_ptr = format!("{base}/nodes");
    match graph.get("nodes") {
        Some(Value::Array(nodes)) if flow.nodes.len() + nodes.len() > MAX_NODES => {
            diags.push(too_large(&nodes_ptr, "components", MAX_NODES));
            return;
        }
        Some(Value::Array(nodes)) => {
            for (i, node) in nodes.iter().enumerate() {
                read_node(node, &format!("{nodes_ptr}/{i}"), group, flow, outputs, diags);
            }
        }
        Some(other) => diags.push(
            Diagnostic::error("wrong-shape", &nodes_ptr, format!("`nodes` must be an array, found {}", kind_of(other)))
                .help("`nodes` lists the flow's components"),
        ),
        None => diags.push(
            Diagnostic::error("wrong-shape", base, "the flow has no `nodes` array")
                .help("export the flow again from Langflow"),
        ),
    }
    let edges_ptr = format!("{base}/edges");
    match graph.get("edges") {
        Some(Value::Array(edges)) if flow.edges.len() + edges.len() > MAX_EDGES => {
            diags.push(too_large(&edges_ptr, "connections", MAX_EDGES));
        }
        Some(Value::Array(edges)) => {
            for (i, edge) in edges.iter().enumerate() {
                if let Some(edge) = read_edge(edge, &format!("{edges_ptr}/{i}"), diags) {
                    flow.edges.push(edge);
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => diags.push(
            Diagnostic::error("wrong-shape", &edges_ptr, format!("`edges` must be an array, found {}", kind_of(other)))
                .help("`edges` lists the connections between components"),
        ),
    }
}

fn too_large(pointer: &str, what: &str, max: usize) -> Diagnostic {
    Diagnostic::error("too-large", pointer, format!("the flow has more than {max} {what}"))
        .help("split it into smaller flows; no flow Langflow's editor makes comes near this")
}

fn read_node(
    value: &Value,
    ptr: &str,
    group: Option<&str>,
    flow: &mut Flow,
    outputs: &mut GroupOutputs,
    diags: &mut Diagnostics,
) {
    let Some(obj) = value.as_object() else {
        diags.push(
            Diagnostic::error("wrong-shape", ptr, format!("a node must be an object, found {}", kind_of(value)))
                .help("remove the entry or export the flow again"),
        );
        return;
    };
    if obj.get("type").and_then(Value::as_str) == Some("noteNode") {
        return;
    }
    let Some(id) = obj.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        diags.push(
            Diagnostic::error("wrong-shape", ptr, "a node has no `id`").help("every node needs a unique string `id`"),
        );
        return;
    };
    if id.chars().count() > MAX_NAME_CHARS {
        diags.push(
            Diagnostic::error(
                "wrong-shape",
                format!("{ptr}/id"),
                format!("a node id is over {MAX_NAME_CHARS} characters"),
            )
            .help("export the flow again from Langflow, which gives short ids"),
        );
        return;
    }
    // Reported here, before a group copies fields into its members: later
    // passes index nodes by id.
    if let Some(first) = flow.nodes.iter().find(|n| n.id == id) {
        diags.push(
            Diagnostic::error("duplicate-id", ptr, format!("two nodes have the id `{id}`"))
                .node(id, &first.display_name)
                .help("give every node a unique id (duplicate the component in Langflow instead of editing ids)"),
        );
        return;
    }
    let Some(data) = obj.get("data").and_then(Value::as_object) else {
        diags.push(
            Diagnostic::error("wrong-shape", format!("{ptr}/data"), format!("node `{id}` has no `data` object"))
                .node(id, id)
                .help("export the flow again from Langflow"),
        );
        return;
    };
    let node_obj = data.get("node").and_then(Value::as_object);
    let display_name: String = node_obj
        .and_then(|n| n.get("display_name"))
        .and_then(Value::as_str)
        .unwrap_or(id)
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let Some(type_name) = data.get("type").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        diags.push(
            Diagnostic::error("wrong-shape", format!("{ptr}/data/type"), format!("node `{id}` has no component type"))
                .node(id, &display_name)
                .help("`data.type` names the component, e.g. `ChatInput`"),
        );
        return;
    };
    let Some(node_obj) = node_obj else {
        diags.push(
            Diagnostic::error(
                "wrong-shape",
                format!("{ptr}/data/node"),
                format!("node `{id}` has no `data.node` object"),
            )
            .node(id, &display_name)
            .help("export the flow again from Langflow"),
        );
        return;
    };
    let node_ptr = format!("{ptr}/data/node");
    let mut node = Node {
        id: id.to_owned(),
        type_name: type_name.to_owned(),
        display_name,
        frozen: node_obj.get("frozen").and_then(Value::as_bool).unwrap_or(false),
        group: group.map(str::to_owned),
        pointer: ptr.to_owned(),
        ..Node::default()
    };
    if let Some(template) = node_obj.get("template").and_then(Value::as_object) {
        for (name, field) in template {
            if name == "_type" || name == "code" {
                continue;
            }
            if let Some(field_obj) = field.as_object() {
                node.fields.push(read_field(name, field_obj, format!("{node_ptr}/template/{}", escape_token(name))));
            }
        }
    } else {
        diags.push(
            Diagnostic::error("wrong-shape", format!("{node_ptr}/template"), format!("node `{id}` has no `template`"))
                .node(id, &node.display_name)
                .help("export the flow again from Langflow"),
        );
    }
    if let Some(outputs) = node_obj.get("outputs").and_then(Value::as_array) {
        for (i, out) in outputs.iter().enumerate() {
            let Some(out) = out.as_object() else { continue };
            let Some(name) = out.get("name").and_then(Value::as_str) else { continue };
            node.outputs.push(Output {
                name: name.to_owned(),
                types: strings(out.get("types")),
                method: out.get("method").and_then(Value::as_str).map(str::to_owned),
                allows_loop: out.get("allows_loop").and_then(Value::as_bool).unwrap_or(false),
                pointer: format!("{node_ptr}/outputs/{i}"),
            });
        }
    }
    if let Some(vars) = node_obj.get("custom_fields").and_then(|c| c.get("template")) {
        node.template_variables = strings(Some(vars));
    }
    if let Some(Value::Object(inner)) = node_obj.get("flow") {
        expand_group(&node, inner, &format!("{node_ptr}/flow"), flow, outputs, diags);
        return;
    }
    flow.nodes.push(node);
}

fn read_field(name: &str, obj: &Map<String, Value>, pointer: String) -> Field {
    Field {
        name: name.to_owned(),
        kind: obj.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
        value: obj.get("value").cloned().unwrap_or(Value::Null),
        input_types: strings(obj.get("input_types")),
        list: flag(obj.get("list")),
        required: flag(obj.get("required")),
        show: flag(obj.get("show")),
        load_from_db: flag(obj.get("load_from_db")),
        input_class: obj.get("_input_type").and_then(Value::as_str).map(str::to_owned),
        pointer,
    }
}

/// Replaces a group node by the nodes of its inner flow. The group's own
/// template carries the current values of inner fields as
/// `<field>_<inner node id>`; edges into the group name their inner target
/// through a `proxy`.
fn expand_group(
    group: &Node,
    inner: &Map<String, Value>,
    ptr: &str,
    flow: &mut Flow,
    outputs: &mut GroupOutputs,
    diags: &mut Diagnostics,
) {
    let Some(graph) = inner.get("data").and_then(Value::as_object) else {
        diags.push(
            Diagnostic::error("wrong-shape", ptr, format!("group `{}` has no inner `data`", group.id))
                .node(&group.id, &group.display_name)
                .help("ungroup the nodes in Langflow and export again"),
        );
        return;
    };
    let (first, first_edge) = (flow.nodes.len(), flow.edges.len());
    read_graph(graph, &format!("{ptr}/data"), Some(&group.id), flow, outputs, diags);
    if let Some(output) = group_output(group, &flow.nodes[first..], &flow.edges[first_edge..]) {
        outputs.insert(group.id.clone(), output);
    }
    for node in &mut flow.nodes[first..] {
        let suffix = format!("_{}", node.id);
        for outer in &group.fields {
            let Some(field_name) = outer.name.strip_suffix(&suffix) else { continue };
            if let Some(field) = node.fields.iter_mut().find(|f| f.name == field_name) {
                field.value = outer.value.clone();
                field.pointer = outer.pointer.clone();
            }
        }
    }
}

/// The inner node that answers for a group: pre-1.0 edges out of a group
/// name the group itself, and the group is shown as (and typed like) the
/// node at the end of its inner flow.
fn group_output(group: &Node, inner: &[Node], edges: &[Edge]) -> Option<String> {
    let direct = || inner.iter().filter(|n| n.group.as_deref() == Some(group.id.as_str()));
    let feeds_nothing = |n: &&Node| !edges.iter().any(|e| e.source == n.id);
    direct()
        .filter(feeds_nothing)
        .find(|n| n.type_name == group.type_name)
        .or_else(|| direct().rfind(feeds_nothing))
        .map(|n| n.id.clone())
}

/// Points edges that leave a group at the node answering for it.
fn resolve_group_sources(edges: &mut [Edge], outputs: &GroupOutputs) {
    for edge in edges {
        // Nested groups answer through their own answering node.
        for _ in 0..outputs.len() {
            match outputs.get(&edge.source) {
                Some(inner) => edge.source = inner.clone(),
                None => break,
            }
        }
    }
}

fn read_edge(value: &Value, ptr: &str, diags: &mut Diagnostics) -> Option<Edge> {
    let Some(obj) = value.as_object() else {
        diags.push(
            Diagnostic::error("wrong-shape", ptr, format!("an edge must be an object, found {}", kind_of(value)))
                .help("remove the entry or export the flow again"),
        );
        return None;
    };
    let source = obj.get("source").and_then(Value::as_str);
    let target = obj.get("target").and_then(Value::as_str);
    let (Some(source), Some(target)) = (source, target) else {
        diags.push(
            Diagnostic::error("wrong-shape", ptr, "an edge has no `source` or `target`")
                .help("every edge needs the string ids of the nodes it connects"),
        );
        return None;
    };
    let data = obj.get("data").and_then(Value::as_object);
    let source_handle =
        data.and_then(|d| d.get("sourceHandle")).cloned().or_else(|| obj.get("sourceHandle").and_then(decode_handle));
    let target_handle =
        data.and_then(|d| d.get("targetHandle")).cloned().or_else(|| obj.get("targetHandle").and_then(decode_handle));
    let mut edge =
        Edge { source: source.to_owned(), target: target.to_owned(), pointer: ptr.to_owned(), ..Edge::default() };
    match source_handle {
        Some(Value::Object(h)) => {
            edge.output = h.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            edge.output_types = strings(h.get("output_types").or_else(|| h.get("baseClasses")));
            if let Some(id) = proxy_id(&h) {
                edge.source = id;
            }
        }
        Some(Value::String(legacy)) => {
            // `Type|node-id|BaseClass|BaseClass…`
            edge.output_types = legacy.split('|').skip(2).map(str::to_owned).collect();
        }
        _ => {}
    }
    match target_handle {
        Some(Value::Object(h)) => {
            if h.contains_key("output_types") && !h.contains_key("fieldName") {
                // A Loop feedback edge: the target handle names an output.
                edge.loop_feedback = true;
                edge.field = h.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                edge.input_types = strings(h.get("output_types"));
            } else {
                edge.field = h.get("fieldName").and_then(Value::as_str).unwrap_or_default().to_owned();
                edge.input_types = strings(h.get("inputTypes"));
                if edge.input_types.is_empty()
                    && let Some(t) = h.get("type").and_then(Value::as_str)
                {
                    edge.input_types.push(t.to_owned());
                }
                if let Some(proxy) = h.get("proxy").and_then(Value::as_object) {
                    if let Some(id) = proxy.get("id").and_then(Value::as_str) {
                        edge.target = id.to_owned();
                    }
                    if let Some(field) = proxy.get("field").and_then(Value::as_str) {
                        edge.field = field.to_owned();
                    }
                }
            }
        }
        Some(Value::String(legacy)) => {
            // `Type|field|node-id`
            let mut parts = legacy.split('|');
            let ty = parts.next().unwrap_or_default();
            edge.field = parts.next().unwrap_or_default().to_owned();
            edge.input_types = vec![ty.to_owned()];
        }
        _ => {}
    }
    if edge.field.is_empty() {
        diags.push(
            Diagnostic::error(
                "bad-edge",
                ptr,
                format!("the edge from `{}` to `{}` does not say which field it feeds", edge.source, edge.target),
            )
            .help("reconnect the edge in Langflow and export again"),
        );
        return None;
    }
    Some(edge)
}

/// A boolean of the template; pre-1.0 exports may write it as text (`"True"`).
pub(crate) fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn proxy_id(handle: &Map<String, Value>) -> Option<String> {
    handle.get("proxy")?.get("id")?.as_str().map(str::to_owned)
}

/// Decodes a handle string: `œ`-encoded JSON in 1.x, `A|B|C` before 1.0.
fn decode_handle(value: &Value) -> Option<Value> {
    let s = value.as_str()?;
    if s.starts_with('{') {
        serde_json::from_str(&s.replace('œ', "\"")).ok()
    } else {
        Some(Value::String(s.to_owned()))
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A short name for the JSON type of `value`, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
