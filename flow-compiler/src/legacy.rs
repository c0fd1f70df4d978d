//! Pre-1.0 exports: Langflow 0.x's LangChain-era components, rewritten
//! into the components of the same meaning before lowering.
//!
//! Langflow 1.13 no longer has these types, so the rewrite follows what
//! LangChain did with them:
//! - `ChatOpenAI` and `OpenAI` are model settings: Language Model's
//!   `model_output`.
//! - `LLMChain` formats its `PromptTemplate` with the input and its
//!   memory's history, calls its model and saves the turn: the `llm-chain`
//!   node, with the prompt template and the `ConversationBufferMemory`
//!   folded into its fields (in LangChain they are objects the chain
//!   calls, not steps of the graph). `TimeTravelGuideChain` is a
//!   `ConversationChain` with a prompt of its own.
//! - A `PromptTemplate` that no chain uses renders text: Prompt.
//! - The retrieval family: `WebBaseLoader` fetches a page (URL),
//!   `RecursiveCharacterTextSplitter` cuts it (Split Text), `Chroma` stores
//!   and searches the chunks (the vector store over the tenant's document
//!   index, which embeds with the host's provider, so `OpenAIEmbeddings` is
//!   folded in), and a `VectorStoreAgent` answers with the store described
//!   by its `VectorStoreInfo` as its one tool (Agent).
//! - The 0.x Chat Input and Chat Output (a `message` field) become today's,
//!   storing nothing: the chain's memory keeps the conversation, as it did.
//! - A flow without Chat Input or Chat Output (0.x's chat window talked to
//!   the chain or agent itself) gets both: the run's input fills the one
//!   prompt variable nothing else fills (or is the agent's question), and
//!   the chain's text (the agent's response) is the answer.
//! - `ZeroShotAgent` (LangChain's ReAct agent) is an Agent: its chain's
//!   model, its `ZeroShotPrompt` prefix as the system prompt, and each
//!   `Tool` among its `allowed_tools` offering the node behind `func`.
//! - A `Tool` that wraps a chain and feeds nothing is dropped, with a
//!   warning.
//!
//! A `Secret` component is refused as such: it would hand a secret's value
//! to the flow. Python functions (`PythonFunctionTool`) and the
//! JSON/OpenAPI toolkit agent have no counterpart and stay unknown
//! components.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::langflow::{Edge, Field, Flow, Node, flag};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The catalog key the rewritten chains carry.
pub const CHAIN: &str = "LLMChain";

const MODELS: &[&str] = &["ChatOpenAI", "OpenAI"];
const SPLITTERS: &[&str] = &["RecursiveCharacterTextSplitter", "CharacterTextSplitter"];
const EMBEDDINGS: &[&str] = &["OpenAIEmbeddings"];
const TIME_TRAVEL_GUIDE: &str = "TimeTravelGuideChain";

/// The fields the chain node reads for itself (`llm-chain`'s own), which a
/// prompt variable cannot shadow.
const CHAIN_FIELDS: &[&str] =
    &["template", "model", "api_key", "input_value", "input_key", "memory_key", "human_prefix", "ai_prefix"];

/// A `PromptTemplate`'s fields that configure it rather than fill a variable.
const PROMPT_SETTINGS: &[&str] =
    &["template", "output_parser", "input_variables", "partial_variables", "template_format", "validate_template"];

/// `TimeTravelGuideChain`'s prompt, as Langflow 0.x defined it (the
/// indentation of its Python source is part of the text).
const TIME_TRAVEL_GUIDE_PROMPT: &str = "I want you to act as my time travel guide. You are helpful and creative. \
I will provide you with the historical period or future time I want to visit and you will suggest the best events, \
sights, or people to experience. Provide the suggestions and any necessary information.
    Current conversation:
    {history}
    Human: {input}
    AI:";

/// Most chains one `PromptTemplate` may feed, and most agents one chain
/// may serve (see [`chain`] and [`zero_shot_agent`]): each gets a copy.
const MAX_CHAINS_PER_PROMPT: usize = 8;

/// Rewrites the pre-1.0 components of `flow`; a 1.x flow is left as it is.
pub fn modernize(flow: &mut Flow, diags: &mut Diagnostics) {
    for node in &mut flow.nodes {
        old_chat_io(node, &mut flow.edges);
    }
    for node in flow.nodes.iter_mut().filter(|n| MODELS.contains(&n.type_name.as_str())) {
        model(node, &mut flow.edges);
    }
    let mut folded = HashSet::new();
    let zero_shot: Vec<usize> = (0..flow.nodes.len()).filter(|&i| flow.nodes[i].type_name == "ZeroShotAgent").collect();
    for &i in &zero_shot {
        zero_shot_agent(flow, i, &mut folded, diags);
    }
    let chains: Vec<usize> = (0..flow.nodes.len())
        .filter(|&i| matches!(flow.nodes[i].type_name.as_str(), CHAIN | TIME_TRAVEL_GUIDE))
        .filter(|&i| !folded.contains(&flow.nodes[i].id))
        .collect();
    for &i in &chains {
        chain(flow, i, &mut folded, diags);
    }
    retrieval(flow, &mut folded);
    let mut agents: Vec<usize> =
        (0..flow.nodes.len()).filter(|&i| flow.nodes[i].type_name == "VectorStoreAgent").collect();
    for &i in &agents {
        vector_store_agent(flow, i, &mut folded, diags);
    }
    agents.extend(zero_shot);
    let rewritten: HashSet<String> = chains
        .iter()
        .chain(&agents)
        .map(|&i| &flow.nodes[i])
        .filter(|n| matches!(n.type_name.as_str(), CHAIN | "Agent"))
        .map(|n| n.id.clone())
        .collect();
    remove(flow, &folded);
    for node in flow.nodes.iter_mut().filter(|n| n.type_name == "PromptTemplate") {
        prompt(node, &mut flow.edges);
    }
    drop_unused_tools(flow, diags);
    refuse_secrets(flow, diags);
    if !rewritten.is_empty() {
        chat_window(flow, &rewritten, diags);
    }
}

/// A 0.x Chat Input or Chat Output: the text is in `message`, and nothing
/// is stored.
fn old_chat_io(node: &mut Node, edges: &mut [Edge]) {
    let chat = matches!(node.type_name.as_str(), "ChatInput" | "ChatOutput");
    if !chat || node.field("input_value").is_some() {
        return;
    }
    let Some(message) = node.fields.iter_mut().find(|f| f.name == "message") else { return };
    message.name = "input_value".into();
    message.show = true;
    message.input_types = vec!["Message".into()];
    for edge in edges.iter_mut().filter(|e| e.target == node.id && e.field == "message") {
        edge.field = "input_value".into();
        edge.input_types.clear();
    }
    for edge in edges.iter_mut().filter(|e| e.source == node.id) {
        edge.output = "message".into();
        edge.output_types = vec!["Message".into()];
    }
    let from_user = node.field("is_ai").is_some_and(|f| !flag(Some(&f.value)));
    let pointer = node.pointer.clone();
    node.fields.retain(|f| f.name == "input_value");
    node.fields.push(setting("should_store_message", Value::Bool(false), &pointer));
    if node.type_name == "ChatOutput" && from_user {
        node.fields.push(setting("sender", "User".into(), &pointer));
        node.fields.push(setting("sender_name", "User".into(), &pointer));
    }
}

/// `ChatOpenAI` / `OpenAI`: OpenAI's model with the node's settings.
fn model(node: &mut Node, edges: &mut [Edge]) {
    let value = |name: &str| node.field(name).map(|f| f.value.clone()).unwrap_or(Value::Null);
    let pointer = node.pointer.clone();
    let mut fields = vec![
        setting("provider", "OpenAI".into(), &pointer),
        setting("model_name", value("model_name"), &pointer),
        setting("temperature", value("temperature"), &pointer),
        setting("max_tokens", value("max_tokens"), &pointer),
    ];
    if let Some(key) = node.field("openai_api_key").filter(|f| !unset(&f.value)) {
        fields.push(Field {
            name: "api_key".into(),
            show: true,
            input_class: Some("SecretStrInput".into()),
            ..key.clone()
        });
    }
    node.fields = fields;
    node.type_name = "LanguageModelComponent".into();
    for edge in edges.iter_mut().filter(|e| e.source == node.id) {
        edge.output = "model_output".into();
        edge.output_types = vec!["LanguageModel".into()];
    }
}

/// What a chain takes from its memory.
struct Memory {
    key: Value,
    human_prefix: Value,
    ai_prefix: Value,
}

impl Memory {
    /// `ConversationChain`'s own when none is connected.
    fn conversation_default() -> Self {
        Self { key: "history".into(), human_prefix: "Human".into(), ai_prefix: "AI".into() }
    }

    fn of(node: &Node) -> Self {
        let or = |name: &str, default: &str| match node.field(name).map(|f| &f.value) {
            Some(v) if !unset(v) => v.clone(),
            _ => default.into(),
        };
        Self {
            key: or("memory_key", "history"),
            human_prefix: or("human_prefix", "Human"),
            ai_prefix: or("ai_prefix", "AI"),
        }
    }
}

/// What a chain is built from: the objects LangChain handed it.
#[derive(Default)]
struct ChainParts {
    /// The prompt's text, and where it came from.
    template: Option<(Value, String)>,
    memory: Option<Memory>,
    /// The prompt's variable fields.
    variables: Vec<Field>,
    /// The model's key, which the chain uses when it calls the model.
    api_key: Option<Field>,
    /// The `PromptTemplate` node folded in.
    prompt: Option<String>,
    /// The `ConversationBufferMemory` node folded in.
    memory_node: Option<String>,
}

impl ChainParts {
    /// Reads what feeds chain `id` (a `TimeTravelGuideChain` brings its own
    /// prompt and memory).
    fn gather(flow: &Flow, id: &str, builtin: bool, pointer: &str) -> Self {
        let mut parts = Self {
            template: builtin.then(|| (Value::from(TIME_TRAVEL_GUIDE_PROMPT), pointer.to_owned())),
            memory: builtin.then(Memory::conversation_default),
            ..Self::default()
        };
        for edge in flow.edges.iter().filter(|e| e.target == id && !e.loop_feedback) {
            let Some(source) = flow.nodes.iter().find(|n| n.id == edge.source) else { continue };
            match (edge.field.as_str(), source.type_name.as_str()) {
                ("llm", _) => parts.api_key = source.field("api_key").cloned(),
                // One prompt (a second edge into `prompt` is the schedule's to
                // report): its fields are copied, once.
                ("prompt", "PromptTemplate") if parts.prompt.is_none() => {
                    if let Some(t) = source.field("template") {
                        parts.template = Some((t.value.clone(), t.pointer.clone()));
                    }
                    let variables = source.fields.iter().filter(|f| !PROMPT_SETTINGS.contains(&f.name.as_str()));
                    parts.variables.extend(variables.map(|f| Field {
                        show: true,
                        kind: "str".into(),
                        input_types: vec!["Message".into()],
                        ..f.clone()
                    }));
                    parts.prompt = Some(source.id.clone());
                }
                ("memory", "ConversationBufferMemory") => {
                    parts.memory = Some(Memory::of(source));
                    parts.memory_node = Some(source.id.clone());
                }
                _ => {}
            }
        }
        parts
    }
}

/// An `LLMChain` (or a chain built on one) becomes the `llm-chain` node,
/// its prompt template and buffer memory folded into its fields.
fn chain(flow: &mut Flow, i: usize, folded: &mut HashSet<String>, diags: &mut Diagnostics) {
    let node = &flow.nodes[i];
    let (id, pointer, name) = (node.id.clone(), node.pointer.clone(), node.display_name.clone());
    let parts = ChainParts::gather(flow, &id, node.type_name == TIME_TRAVEL_GUIDE, &pointer);
    // Each chain gets its own copy of its prompt's fields and edges: a
    // prompt shared without end would multiply the upload.
    if let Some(refused) =
        parts.prompt.as_deref().and_then(|p| shared_too_widely(flow, p, "prompt", (&pointer, &id, &name)))
    {
        diags.push(refused);
        return;
    }
    folded.extend(parts.memory_node.clone());
    let fed = rewire(flow, &id, parts.prompt.as_deref(), folded);
    let (template, template_pointer) = parts.template.unwrap_or_else(|| {
        // A prompt of another type is reported as that type; no prompt at all is this.
        if !flow.edges.iter().any(|e| e.target == id && e.field == "prompt") {
            diags.push(
                Diagnostic::error("legacy-chain-prompt", &pointer, format!("chain `{id}` has no prompt template"))
                    .node(&id, &name)
                    .field("prompt")
                    .help("connect a PromptTemplate to the chain's `prompt` in Langflow and export again"),
            );
        }
        (Value::from(""), pointer.clone())
    });
    for v in parts.variables.iter().filter(|v| CHAIN_FIELDS.contains(&v.name.as_str())) {
        diags.push(
            Diagnostic::error(
                "legacy-chain-variable",
                &v.pointer,
                format!("prompt variable `{}` of chain `{id}` has the name of one of the chain's own settings", v.name),
            )
            .node(&id, &name)
            .field(&v.name)
            .help(format!("rename `{{{}}}` in the prompt template", v.name)),
        );
    }
    // The one variable nothing fills takes the user's message.
    let memory_key = parts.memory.as_ref().and_then(|m| m.key.as_str()).unwrap_or_default();
    let filled = |name: &str| {
        name == memory_key || fed.contains(name) || parts.variables.iter().any(|v| v.name == name && !unset(&v.value))
    };
    let open: Vec<String> =
        template_variables(template.as_str().unwrap_or_default()).into_iter().filter(|v| !filled(v)).collect();
    if open.len() > 1 {
        diags.push(
            Diagnostic::error(
                "legacy-chain-inputs",
                &template_pointer,
                format!(
                    "chain `{id}` leaves {} prompt variables for the user's message ({}); a chat fills one",
                    open.len(),
                    open.join(", ")
                ),
            )
            .node(&id, &name)
            .help(format!("give every variable but one (e.g. `{}`) a value or an edge in Langflow", open[0])),
        );
    }
    let input_key = open.into_iter().next().unwrap_or_default();
    let mut fields = vec![
        Field {
            name: "template".into(),
            kind: "str".into(),
            value: template,
            show: true,
            pointer: template_pointer,
            ..Field::default()
        },
        port("model", "LanguageModel", true, &pointer),
        port("input_value", "Message", false, &pointer),
        setting("input_key", input_key.into(), &pointer),
    ];
    if let Some(m) = parts.memory {
        fields.push(setting("memory_key", m.key, &pointer));
        fields.push(setting("human_prefix", m.human_prefix, &pointer));
        fields.push(setting("ai_prefix", m.ai_prefix, &pointer));
    }
    // The chain makes the call, so it carries the model's key (once: the
    // model node already warns about a key written into the flow).
    fields.extend(parts.api_key.map(|key| Field { input_class: None, ..key }));
    fields.extend(parts.variables);
    let node = &mut flow.nodes[i];
    node.fields = fields;
    node.type_name = CHAIN.into();
    for edge in flow.edges.iter_mut().filter(|e| e.source == id) {
        edge.output = "text".into();
        edge.output_types = vec!["Message".into()];
    }
}

/// Points chain `id`'s model edge at its `model` field and copies the
/// edges into its prompt's variables onto the chain; the prompt is folded
/// in. Returns the variables those edges fill.
fn rewire(flow: &mut Flow, id: &str, prompt: Option<&str>, folded: &mut HashSet<String>) -> HashSet<String> {
    for edge in flow.edges.iter_mut().filter(|e| e.target == id && e.field == "llm") {
        edge.field = "model".into();
        edge.input_types.clear();
    }
    let mut fed = HashSet::new();
    let Some(prompt) = prompt else { return fed };
    folded.insert(prompt.to_owned());
    let into_prompt: Vec<Edge> =
        flow.edges.iter().filter(|e| e.target == prompt && !e.loop_feedback).cloned().collect();
    for mut edge in into_prompt {
        fed.insert(edge.field.clone());
        edge.target = id.to_owned();
        edge.input_types.clear();
        flow.edges.push(edge);
    }
    fed
}

/// A field an edge of `kind` feeds.
fn port(name: &str, kind: &str, required: bool, pointer: &str) -> Field {
    Field {
        name: name.into(),
        input_types: vec![kind.into()],
        required,
        show: true,
        pointer: pointer.into(),
        ..Field::default()
    }
}

/// A `PromptTemplate` outside a chain: Langflow's Prompt.
fn prompt(node: &mut Node, edges: &mut [Edge]) {
    node.type_name = "Prompt".into();
    node.fields.retain(|f| f.name == "template" || !PROMPT_SETTINGS.contains(&f.name.as_str()));
    for field in node.fields.iter_mut().filter(|f| f.name != "template") {
        field.show = true;
        field.input_types = vec!["Message".into()];
    }
    for edge in edges.iter_mut() {
        if edge.source == node.id {
            edge.output = "prompt".into();
            edge.output_types = vec!["Message".into()];
        } else if edge.target == node.id {
            edge.input_types.clear();
        }
    }
}

/// The loaders, splitters, embeddings and vector stores of a retrieval
/// pipeline, as today's URL, Split Text and vector store.
fn retrieval(flow: &mut Flow, folded: &mut HashSet<String>) {
    let Flow { nodes, edges, .. } = flow;
    let embeddings: HashSet<String> =
        nodes.iter().filter(|n| EMBEDDINGS.contains(&n.type_name.as_str())).map(|n| n.id.clone()).collect();
    for node in nodes.iter_mut() {
        match node.type_name.as_str() {
            "WebBaseLoader" => {
                let pointer = node.pointer.clone();
                let page = node.field("web_path").map_or(Value::Null, |f| f.value.clone());
                node.fields = vec![
                    Field { value: Value::Array(vec![page]), list: true, ..setting("urls", Value::Null, &pointer) },
                    setting("max_depth", 1.into(), &pointer),
                    setting("format", "Text".into(), &pointer),
                ];
                node.type_name = "URLComponent".into();
                retype_outputs(edges, &node.id, "page_results", "DataFrame");
            }
            t if SPLITTERS.contains(&t) => {
                let pointer = node.pointer.clone();
                let value = |name: &str| node.field(name).map_or(Value::Null, |f| f.value.clone());
                node.fields = vec![
                    port("data_inputs", "DataFrame", true, &pointer),
                    setting("chunk_size", value("chunk_size"), &pointer),
                    setting("chunk_overlap", value("chunk_overlap"), &pointer),
                    setting("separator", value("separators"), &pointer),
                ];
                node.type_name = "SplitText".into();
                refeed(edges, &node.id, "documents", "data_inputs");
                retype_outputs(edges, &node.id, "dataframe", "DataFrame");
            }
            // A 0.x vector store: its documents are what it ingests; the
            // host's embeddings stand in for the connected model.
            "Chroma" if node.field("documents").is_some() && node.field("ingest_data").is_none() => {
                let pointer = node.pointer.clone();
                let collection = node.field("collection_name").map_or(Value::Null, |f| f.value.clone());
                node.fields = vec![
                    Field { list: true, ..port("ingest_data", "DataFrame", false, &pointer) },
                    setting("collection_name", collection, &pointer),
                ];
                refeed(edges, &node.id, "documents", "ingest_data");
                let models = edges.iter().filter(|e| e.target == node.id && e.field == "embedding");
                folded.extend(models.map(|e| e.source.clone()).filter(|source| embeddings.contains(source)));
            }
            _ => {}
        }
    }
}

/// Points the edges into field `from` of node `id` at field `to`.
fn refeed(edges: &mut [Edge], id: &str, from: &str, to: &str) {
    for edge in edges.iter_mut().filter(|e| e.target == id && e.field == from) {
        edge.field = to.into();
        edge.input_types.clear();
    }
}

/// Names the output the edges out of `id` come from (0.x edges name none;
/// the tool edges the rewrite added name theirs).
fn retype_outputs(edges: &mut [Edge], id: &str, output: &str, kind: &str) {
    for edge in edges.iter_mut().filter(|e| e.source == id && e.output != crate::lower::TOOL_OUTPUT) {
        edge.output = output.into();
        edge.output_types = vec![kind.into()];
    }
}

/// A `VectorStoreAgent` becomes an Agent whose one tool is the vector
/// store its `VectorStoreInfo` describes, named and described as
/// LangChain's toolkit named it; the info node is folded in.
fn vector_store_agent(flow: &mut Flow, i: usize, folded: &mut HashSet<String>, diags: &mut Diagnostics) {
    let (id, pointer, display) = {
        let n = &flow.nodes[i];
        (n.id.clone(), n.pointer.clone(), n.display_name.clone())
    };
    let info = source_of(flow, &id, "vectorstoreinfo")
        .filter(|(info, _)| flow.nodes.iter().any(|n| &n.id == info && n.type_name == "VectorStoreInfo"));
    let store = info.as_ref().and_then(|(info, _)| source_of(flow, info, "vectorstore"));
    let (Some((info, edge_pointer)), Some((store, _))) = (info, store) else {
        diags.push(
            Diagnostic::error(
                "legacy-agent-store",
                &pointer,
                format!("agent `{id}` has no vector store described to it"),
            )
            .node(&id, &display)
            .field("vectorstoreinfo")
            .help("connect a VectorStoreInfo, with a vector store in its `vectorstore`, to the agent in Langflow"),
        );
        return;
    };
    let text = |flow: &Flow, field: &str| {
        flow.nodes
            .iter()
            .find(|n| n.id == info)
            .and_then(|n| n.field(field))
            .and_then(|f| f.value.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (name, about) = (text(flow, "name"), text(flow, "description"));
    let tool = tool_name(&name);
    if let Some(node) = flow.nodes.iter_mut().find(|n| n.id == store) {
        let metadata = serde_json::json!([{
            "name": tool,
            "description": format!(
                "Useful for when you need to answer questions about {name}. Whenever you need information about \
                 {about} you should use this. Input should be a fully formed question."
            ),
            "args": {"search_query": {"type": "string", "description": "A fully formed question."}},
            "status": true,
        }]);
        node.fields.push(setting("tools_metadata", metadata, &node.pointer.clone()));
    }
    folded.insert(info);
    flow.edges.push(tool_edge(&store, &id, &edge_pointer));
    refeed(&mut flow.edges, &id, "llm", "model");
    let system_prompt = format!(
        "You answer questions about {name}: {about}. Use the `{tool}` tool to look up what the documents say. \
         If a question is not about them, say that you don't know."
    );
    become_agent(flow, i, system_prompt.into());
}

/// An edge offering node `tool` (its component-as-tool output) to `agent`.
fn tool_edge(tool: &str, agent: &str, pointer: &str) -> Edge {
    Edge {
        source: tool.into(),
        output: crate::lower::TOOL_OUTPUT.into(),
        output_types: vec!["Tool".into()],
        target: agent.into(),
        field: "tools".into(),
        input_types: vec!["Tool".into()],
        loop_feedback: false,
        pointer: pointer.into(),
    }
}

/// Node `i`, a 0.x agent whose model and tools edges are in place,
/// becomes an Agent with `system_prompt` and no conversation memory
/// (LangChain's agents kept none).
fn become_agent(flow: &mut Flow, i: usize, system_prompt: Value) {
    let node = &mut flow.nodes[i];
    let pointer = node.pointer.clone();
    node.fields = vec![
        port("model", "LanguageModel", true, &pointer),
        Field { list: true, ..port("tools", "Tool", false, &pointer) },
        port("input_value", "Message", false, &pointer),
        setting("system_prompt", system_prompt, &pointer),
        setting("n_messages", 0.into(), &pointer),
    ];
    node.type_name = "Agent".into();
    retype_outputs(&mut flow.edges, &node.id.clone(), "response", "Message");
}

/// The node and the edge's pointer feeding field `field` of `target`.
fn source_of(flow: &Flow, target: &str, field: &str) -> Option<(String, String)> {
    flow.edges.iter().find(|e| e.target == target && e.field == field).map(|e| (e.source.clone(), e.pointer.clone()))
}

/// A copy of node `id`.
fn node_of(flow: &Flow, id: &str) -> Option<Node> {
    flow.nodes.iter().find(|n| n.id == id).cloned()
}

/// Refuses `source` feeding more than [`MAX_CHAINS_PER_PROMPT`] nodes
/// through `field` (a prompt's chains, a chain's agents), each of which
/// would get a copy: the error for node `at` (pointer, id, name).
fn shared_too_widely(flow: &Flow, source: &str, field: &str, at: (&str, &str, &str)) -> Option<Diagnostic> {
    let fed = flow.edges.iter().filter(|e| e.source == source && e.field == field).count();
    let (what, fix) = if field == "prompt" {
        ("chains", "give each chain its own PromptTemplate")
    } else {
        ("agents", "give each agent its own LLMChain")
    };
    let (pointer, id, name) = at;
    (fed > MAX_CHAINS_PER_PROMPT).then(|| {
        Diagnostic::error(
            "legacy-prompt-shared",
            pointer,
            format!("`{source}` feeds {fed} {what}; at most {MAX_CHAINS_PER_PROMPT} may share one"),
        )
        .node(id, name)
        .field(field)
        .help(format!("{fix} in Langflow and export again"))
    })
}

/// The component type of node `id`.
fn type_of<'a>(flow: &'a Flow, id: &str) -> Option<&'a str> {
    flow.nodes.iter().find(|n| n.id == id).map(|n| n.type_name.as_str())
}

/// A `ZeroShotAgent` (LangChain's ReAct agent) becomes an Agent: its
/// `llm_chain`'s model is the agent's model and the chain's
/// `ZeroShotPrompt` prefix its system prompt (the chain and prompt are
/// the agent's own machinery and are folded in); each `Tool` among its
/// `allowed_tools` offers the node behind `func` as a tool, under the
/// Tool's name and description.
fn zero_shot_agent(flow: &mut Flow, i: usize, folded: &mut HashSet<String>, diags: &mut Diagnostics) {
    let (id, pointer, display) = {
        let n = &flow.nodes[i];
        (n.id.clone(), n.pointer.clone(), n.display_name.clone())
    };
    let chain = source_of(flow, &id, "llm_chain").filter(|(c, _)| type_of(flow, c) == Some(CHAIN));
    let Some((chain, chain_edge)) = chain else {
        diags.push(
            Diagnostic::error("legacy-agent-chain", &pointer, format!("agent `{id}` has no LLMChain in `llm_chain`"))
                .node(&id, &display)
                .field("llm_chain")
                .help("connect an LLMChain (with a model and a ZeroShotPrompt) to the agent in Langflow"),
        );
        return;
    };
    // Each agent gets its own copy of the prompt's prefix.
    let prompt_id = source_of(flow, &chain, "prompt").map(|(p, _)| p);
    let at = (pointer.as_str(), id.as_str(), display.as_str());
    let refused = shared_too_widely(flow, &chain, "llm_chain", at)
        .or_else(|| prompt_id.as_deref().and_then(|p| shared_too_widely(flow, p, "prompt", at)));
    if let Some(refused) = refused {
        diags.push(refused);
        return;
    }
    let prompt = prompt_id.and_then(|p| node_of(flow, &p));
    let prefix = prompt
        .as_ref()
        .filter(|p| p.type_name == "ZeroShotPrompt")
        .and_then(|p| p.field("prefix"))
        .map_or(Value::Null, |f| f.value.clone());
    // The chain and its prompt are the agents' own machinery when only
    // zero-shot agents use the chain.
    let types: HashMap<&str, &str> = flow.nodes.iter().map(|n| (n.id.as_str(), n.type_name.as_str())).collect();
    let only_agents = flow
        .edges
        .iter()
        .filter(|e| e.source == chain)
        .all(|e| types.get(e.target.as_str()).is_some_and(|t| matches!(*t, "ZeroShotAgent" | "Agent")));
    if only_agents {
        folded.insert(chain.clone());
        folded.extend(prompt.filter(|p| p.type_name == "ZeroShotPrompt").map(|p| p.id));
    }
    if let Some((model, _)) = source_of(flow, &chain, "llm") {
        flow.edges.push(Edge {
            source: model,
            output: "model_output".into(),
            output_types: vec!["LanguageModel".into()],
            target: id.clone(),
            field: "model".into(),
            input_types: vec!["LanguageModel".into()],
            loop_feedback: false,
            pointer: chain_edge,
        });
    }
    // A `Tool` offers its function's node; any other tool keeps its edge
    // (and is reported if unknown).
    let offered: Vec<(String, String)> = flow
        .edges
        .iter()
        .filter(|e| e.target == id && e.field == "allowed_tools")
        .map(|e| (e.source.clone(), e.pointer.clone()))
        .collect();
    for (tool, edge_pointer) in offered {
        let Some(wrapper) = node_of(flow, &tool).filter(|n| n.type_name == "Tool") else { continue };
        let Some((function, _)) = source_of(flow, &tool, "func") else { continue };
        let text = |field: &str| wrapper.field(field).and_then(|f| f.value.as_str()).unwrap_or_default().to_owned();
        let metadata = serde_json::json!([{
            "name": tool_name(&text("name")),
            "description": text("description"),
            "args": {"input_value": {"type": "string", "description": "The input."}},
            "status": true,
        }]);
        if let Some(node) = flow.nodes.iter_mut().find(|n| n.id == function) {
            let at = node.pointer.clone();
            node.fields.push(setting("tools_metadata", metadata, &at));
        }
        folded.insert(tool);
        flow.edges.push(tool_edge(&function, &id, &edge_pointer));
    }
    refeed(&mut flow.edges, &id, "allowed_tools", "tools");
    become_agent(flow, i, prefix);
}

/// A tool name for `name`, as models accept them.
fn tool_name(name: &str) -> String {
    let name = crate::ir::tool_name(name);
    if name.is_empty() { "search_documents".into() } else { name }
}

/// Removes the nodes folded into chains, and their edges.
fn remove(flow: &mut Flow, folded: &HashSet<String>) {
    flow.nodes.retain(|n| !folded.contains(&n.id));
    flow.edges.retain(|e| !folded.contains(&e.source) && !folded.contains(&e.target));
}

/// A `Tool` that feeds nothing does nothing: dropped, with a warning.
fn drop_unused_tools(flow: &mut Flow, diags: &mut Diagnostics) {
    let unused: HashSet<String> = flow
        .nodes
        .iter()
        .filter(|n| n.type_name == "Tool" && !flow.edges.iter().any(|e| e.source == n.id))
        .map(|n| n.id.clone())
        .collect();
    for node in flow.nodes.iter().filter(|n| unused.contains(&n.id)) {
        diags.push(
            Diagnostic::warning(
                "unused-tool",
                &node.pointer,
                format!("tool `{}` feeds no agent and is left out", node.id),
            )
            .node(&node.id, &node.display_name)
            .help("connect the tool to an agent, or delete it"),
        );
    }
    remove(flow, &unused);
}

/// A `Secret` component hands a global variable's value to the next
/// component, and so to whoever reads the answer. Sandflow keeps secrets
/// on the host, where the capabilities that need them use them; no
/// component, custom or not, may read one. Said as such, rather than as
/// an unknown type a custom node could provide.
fn refuse_secrets(flow: &mut Flow, diags: &mut Diagnostics) {
    let secrets: HashSet<String> =
        flow.nodes.iter().filter(|n| n.type_name == "Secret").map(|n| n.id.clone()).collect();
    for node in flow.nodes.iter().filter(|n| secrets.contains(&n.id)) {
        diags.push(
            Diagnostic::error(
                "secret-in-flow",
                format!("{}/data/type", node.pointer),
                format!("`{}` would pass a secret's value into the flow, where buyers could read it", node.id),
            )
            .node(&node.id, &node.display_name)
            .help(
                "remove the Secret component; name the global variable in the credential field of the component \
                 that needs it (e.g. a model's API key), which the host fills in without the flow seeing it",
            ),
        );
    }
    remove(flow, &secrets);
}

/// 0.x's chat window talked to the chain or agent itself: without a Chat
/// Input, the run's input goes to every `rewritten` chain with a variable
/// left open and to every agent; without a Chat Output, the answer is that
/// of the one that feeds nothing.
fn chat_window(flow: &mut Flow, rewritten: &HashSet<String>, diags: &mut Diagnostics) {
    let has = |flow: &Flow, types: &[&str]| flow.nodes.iter().any(|n| types.contains(&n.type_name.as_str()));
    // The rewritten chains and agents: id, pointer, the output that
    // answers, and whether the user's message has somewhere to go.
    // A rewritten agent another agent uses as a tool gets its input from the call.
    let tools: HashSet<&str> =
        flow.edges.iter().filter(|e| e.output == crate::lower::TOOL_OUTPUT).map(|e| e.source.as_str()).collect();
    let answering: Vec<(String, String, &str, bool)> = flow
        .nodes
        .iter()
        .filter(|n| rewritten.contains(&n.id) && !tools.contains(n.id.as_str()))
        .map(|n| {
            let (answer, waits) = match n.type_name.as_str() {
                CHAIN => ("text", n.field("input_key").is_some_and(|f| !unset(&f.value))),
                _ => ("response", true),
            };
            (n.id.clone(), n.pointer.clone(), answer, waits)
        })
        .collect();
    if !has(flow, &["ChatInput", "TextInput", "Webhook"]) {
        let waiting: Vec<(String, String)> =
            answering.iter().filter(|a| a.3).map(|(id, pointer, ..)| (id.clone(), pointer.clone())).collect();
        if let Some((first, pointer)) = waiting.first() {
            let mut input = synthesized(flow, first, "ChatInput", "Chat Input", pointer);
            input.fields = vec![
                setting("input_value", Value::Null, pointer),
                setting("should_store_message", Value::Bool(false), pointer),
            ];
            for (id, pointer) in &waiting {
                flow.edges.push(wire(&input.id, "message", id, "input_value", pointer));
            }
            flow.nodes.push(input);
        }
    }
    if !has(flow, &["ChatOutput", "TextOutput"]) {
        let ends: Vec<&(String, String, &str, bool)> =
            answering.iter().filter(|(id, ..)| !flow.edges.iter().any(|e| &e.source == id)).collect();
        if let Some(&&(ref last, ref pointer, answer, _)) = ends.last() {
            if ends.len() > 1 {
                diags.push(
                    Diagnostic::warning(
                        "legacy-answer",
                        pointer,
                        format!("{} chains or agents end the flow; the answer is `{last}`'s", ends.len()),
                    )
                    .help("connect the one that answers to a Chat Output"),
                );
            }
            let mut output = synthesized(flow, last, "ChatOutput", "Chat Output", pointer);
            output.fields = vec![
                port("input_value", "Message", false, pointer),
                setting("should_store_message", Value::Bool(false), pointer),
            ];
            flow.edges.push(wire(last, answer, &output.id, "input_value", pointer));
            flow.nodes.push(output);
        }
    }
}

/// A node the rewrite adds on behalf of `owner`, with an id no node has.
fn synthesized(flow: &Flow, owner: &str, type_name: &str, display_name: &str, pointer: &str) -> Node {
    let mut id = format!("{type_name}-{owner}");
    while flow.nodes.iter().any(|n| n.id == id) {
        id.push('_');
    }
    Node {
        id,
        type_name: type_name.into(),
        display_name: display_name.into(),
        group: None,
        pointer: pointer.into(),
        ..Node::default()
    }
}

fn wire(source: &str, output: &str, target: &str, field: &str, pointer: &str) -> Edge {
    Edge {
        source: source.into(),
        output: output.into(),
        output_types: vec!["Message".into()],
        target: target.into(),
        field: field.into(),
        input_types: vec!["Message".into()],
        loop_feedback: false,
        pointer: pointer.into(),
    }
}

/// A shown field holding a fixed setting.
fn setting(name: &str, value: Value, pointer: &str) -> Field {
    Field { name: name.into(), kind: "str".into(), value, show: true, pointer: pointer.into(), ..Field::default() }
}

/// No value: empty, null, or Python's `None` written out as text.
fn unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty() || s.trim() == "None",
        _ => false,
    }
}

/// The names an f-string template formats, in order, once each
/// (`{{` and `}}` are literal braces).
pub fn template_variables(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(escaped) = after.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(close) = after.find('}') else { break };
        let name = after[..close].split(['!', ':']).next().unwrap_or_default().trim();
        if !name.is_empty() && !name.contains('{') && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileOptions, check};
    use serde_json::json;

    /// A pre-1.0 export: ChatOpenAI and a PromptTemplate with `template`
    /// into an LLMChain, edges in the old `Type|field|id` form.
    fn chain_flow(template: &str, variables: &[&str]) -> Vec<u8> {
        let mut prompt = json!({"template": {"type": "prompt", "show": "True", "value": template}});
        for v in variables {
            prompt[*v] = json!({"type": "str", "show": "True", "value": ""});
        }
        let node = |id: &str, template: serde_json::Value| json!({"id": id, "data": {"type": id, "node": {"template": template}}});
        let edge = |from: &str, field: &str| json!({"source": from, "target": "LLMChain", "sourceHandle": format!("{from}|{from}|X"), "targetHandle": format!("X|{field}|LLMChain")});
        json!({"data": {
            "nodes": [
                node("ChatOpenAI", json!({"model_name": {"type": "str", "show": "True", "value": "gpt-4o"}})),
                node("PromptTemplate", prompt),
                node("LLMChain", json!({"llm": {"type": "BaseLanguageModel", "show": "True", "required": "True"}})),
            ],
            "edges": [edge("ChatOpenAI", "llm"), edge("PromptTemplate", "prompt")],
        }})
        .to_string()
        .into_bytes()
    }

    fn codes(source: &[u8]) -> Vec<&'static str> {
        check(source, &CompileOptions::default()).1.iter().filter(|d| d.is_error()).map(|d| d.code).collect()
    }

    #[test]
    fn a_chain_with_one_open_variable_takes_the_chat_input() {
        let (plan, diags) = check(&chain_flow("Q: {question}", &["question"]), &CompileOptions::default());
        let plan = plan.unwrap_or_else(|| panic!("compiles: {diags:?}"));
        let roles: Vec<_> = plan.nodes.iter().map(|n| (n.node.as_str(), n.role)).collect();
        assert!(roles.contains(&("chat-input", crate::catalog::Role::ChatInput)), "{roles:?}");
        assert!(roles.contains(&("chat-output", crate::catalog::Role::ChatOutput)), "{roles:?}");
        let chain = plan.nodes.iter().find(|n| n.node == "llm-chain").expect("the chain");
        let input_key = chain.params.iter().find(|p| p.name == "input_key").expect("input_key");
        assert_eq!(input_key.value, crate::ir::ParamValue::Value(json!("question")));
    }

    #[test]
    fn a_chain_that_leaves_two_variables_open_is_refused() {
        assert_eq!(codes(&chain_flow("{a} and {b}", &["a", "b"])), ["legacy-chain-inputs"]);
    }

    #[test]
    fn a_prompt_variable_cannot_pose_as_a_chain_setting() {
        assert_eq!(
            codes(&chain_flow("{model} {api_key}", &["model", "api_key"])),
            ["legacy-chain-variable", "legacy-chain-variable", "legacy-chain-inputs"]
        );
    }

    #[test]
    fn template_variables_skip_escaped_braces_and_repeat_once() {
        assert_eq!(template_variables("{history}\nHuman: {text} {text} {{literal}} {x!r}"), ["history", "text", "x"]);
        assert!(template_variables("no variables, {{just}} braces").is_empty());
    }

    #[test]
    fn python_none_and_blank_are_unset() {
        assert!(unset(&Value::from("None")) && unset(&Value::from(" ")) && unset(&Value::Null));
        assert!(!unset(&Value::from("gpt-4o")));
    }
}
