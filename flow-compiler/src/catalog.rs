//! The lowering catalog: which Langflow component types Sandflow's standard
//! node library implements, under which keys, with which outputs, and which
//! host capabilities each needs.
//!
//! Fields (a node's inputs) are read from the export's own template, which is
//! how Langflow defines a component instance; the catalog pins what the node
//! library guarantees: the outputs it produces and the capabilities it uses.
//! A type that is not here compiles only if a custom node of that name is
//! published (see [`crate::CompileOptions::custom_nodes`]).

use serde::{Deserialize, Serialize};

/// A host capability a node needs (an import of `sandflow:host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Chat models.
    Llm,
    /// Text embeddings.
    Embeddings,
    /// The tenant's indexed documents.
    Retrieval,
    /// Chat history per session.
    Memory,
    /// Outbound HTTP and web search.
    Http,
    /// Allow-listed SQL databases.
    Sql,
    /// Run attachments and tenant storage.
    Files,
    /// The date and time in a time zone.
    Calendar,
}

/// What part a node plays in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Receives `input_value` of `input_type` chat; forced into the first layer.
    ChatInput,
    /// Receives `input_value` of `input_type` text.
    TextInput,
    /// Receives the body of `/api/v1/webhook`; the start of the flow.
    Webhook,
    /// Its message is the answer of a chat run.
    ChatOutput,
    /// Its text is the answer of a text run.
    TextOutput,
    /// Iterates over items; its `item` output feeds a body whose result comes back.
    Loop,
    /// Takes one branch and stops the others.
    Router,
    /// Anything else.
    Step,
}

/// One component type the node library implements.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// Langflow keys (`data.type`) this entry answers to.
    pub keys: &'static [&'static str],
    /// Name of the node in the standard library.
    pub node: &'static str,
    /// Outputs the node produces: name and Langflow types.
    pub outputs: &'static [(&'static str, &'static [&'static str])],
    /// Host capabilities the node uses.
    pub capabilities: &'static [Capability],
    /// Part played in the schedule.
    pub role: Role,
}

use Capability::*;

const MESSAGE: &[&str] = &["Message"];
const DATA: &[&str] = &["Data", "JSON"];
const TABLE: &[&str] = &["DataFrame", "Table"];
const TOOL: &[&str] = &["Tool"];
const MODEL: &[&str] = &["LanguageModel"];

const fn step(
    keys: &'static [&'static str],
    node: &'static str,
    outputs: &'static [(&'static str, &'static [&'static str])],
    capabilities: &'static [Capability],
) -> Component {
    Component { keys, node, outputs, capabilities, role: Role::Step }
}

const fn with_role(mut component: Component, role: Role) -> Component {
    component.role = role;
    component
}

/// Every component type the standard node library implements.
pub static COMPONENTS: &[Component] = &[
    // Inputs and outputs
    with_role(step(&["ChatInput"], "chat-input", &[("message", MESSAGE)], &[Files, Memory]), Role::ChatInput),
    with_role(step(&["TextInput"], "text-input", &[("text", MESSAGE)], &[]), Role::TextInput),
    with_role(step(&["Webhook"], "webhook", &[("output_data", DATA)], &[]), Role::Webhook),
    with_role(step(&["ChatOutput"], "chat-output", &[("message", MESSAGE)], &[Memory]), Role::ChatOutput),
    with_role(step(&["TextOutput"], "text-output", &[("text", MESSAGE)], &[]), Role::TextOutput),
    // Text processing
    step(&["Prompt", "Prompt Template"], "prompt", &[("prompt", MESSAGE)], &[]),
    step(&["parser", "ParserComponent"], "parser", &[("parsed_text", MESSAGE)], &[]),
    step(&["ParseData"], "parse-data", &[("text", MESSAGE), ("data_list", DATA)], &[]),
    step(&["SplitText"], "split-text", &[("dataframe", TABLE), ("chunks", DATA)], &[]),
    step(
        &["TypeConverterComponent"],
        "type-convert",
        &[("message_output", MESSAGE), ("data_output", DATA), ("dataframe_output", TABLE)],
        &[],
    ),
    step(&["MessagetoData"], "message-to-data", &[("data", DATA)], &[]),
    step(
        &["DataFrameKeywordSearch"],
        "dataframe-keyword-search",
        &[("result", TABLE), ("component_as_tool", TOOL)],
        &[],
    ),
    // Flow control
    with_role(step(&["LoopComponent"], "loop", &[("item", DATA), ("done", TABLE)], &[]), Role::Loop),
    with_role(
        step(&["ConditionalRouter"], "conditional-router", &[("true_result", MESSAGE), ("false_result", MESSAGE)], &[]),
        Role::Router,
    ),
    // Models and agents
    step(&["LanguageModelComponent"], "language-model", &[("text_output", MESSAGE), ("model_output", MODEL)], &[Llm]),
    step(
        &["Agent"],
        "agent",
        &[("response", MESSAGE), ("structured_response", DATA), ("component_as_tool", TOOL)],
        &[Llm, Memory, Calendar],
    ),
    step(
        &["StructuredOutput"],
        "structured-output",
        &[("structured_output", DATA), ("dataframe_output", TABLE)],
        &[Llm],
    ),
    // Pre-1.0: LangChain's LLMChain, its prompt and memory folded in (see `legacy`).
    step(&["LLMChain"], "llm-chain", &[("text", MESSAGE)], &[Llm, Memory]),
    step(&["BatchRunComponent"], "batch-run", &[("batch_results", TABLE)], &[Llm]),
    step(&["CalculatorComponent"], "calculator", &[("result", DATA), ("component_as_tool", TOOL)], &[]),
    step(&["CurrentDate"], "current-date", &[("current_date", MESSAGE), ("component_as_tool", TOOL)], &[Calendar]),
    // Memory and knowledge
    step(
        &["Memory"],
        "message-history",
        &[("messages_text", MESSAGE), ("dataframe", TABLE), ("stored_messages", MESSAGE)],
        &[Memory],
    ),
    step(&["MemoryBase"], "memory-base", &[("retrieve_data", TABLE), ("component_as_tool", TOOL)], &[Retrieval]),
    step(
        &["Knowledge"],
        "knowledge",
        &[("retrieve_data", TABLE), ("dataframe_output", DATA), ("component_as_tool", TOOL)],
        &[Retrieval, Embeddings],
    ),
    step(
        &["AstraDB", "Chroma"],
        "vector-store",
        &[("search_results", DATA), ("dataframe", TABLE), ("component_as_tool", TOOL)],
        &[Retrieval, Embeddings],
    ),
    // The outside world
    step(
        &["URLComponent"],
        "url",
        &[("page_results", TABLE), ("raw_results", MESSAGE), ("component_as_tool", TOOL)],
        &[Http],
    ),
    step(&["UnifiedWebSearch"], "web-search", &[("results", TABLE), ("component_as_tool", TOOL)], &[Http]),
    step(&["ArXivComponent"], "arxiv", &[("dataframe", TABLE), ("component_as_tool", TOOL)], &[Http]),
    step(&["APIRequest"], "api-request", &[("data", DATA), ("component_as_tool", TOOL)], &[Http]),
    step(&["AssemblyAITranscriber"], "assemblyai-transcriber", &[("transcript", MESSAGE)], &[Http]),
    step(&["SQLComponent"], "sql", &[("run_sql_query", TABLE), ("component_as_tool", TOOL)], &[Sql]),
    // Files
    step(
        &["File"],
        "file",
        &[
            ("message", MESSAGE),
            ("dataframe", TABLE),
            ("json", DATA),
            ("path", MESSAGE),
            ("advanced_dataframe", TABLE),
            ("advanced_markdown", MESSAGE),
            ("component_as_tool", TOOL),
        ],
        &[Files],
    ),
    step(&["SaveToFile"], "save-to-file", &[("message", MESSAGE)], &[Files]),
    step(&["Directory"], "directory", &[("dataframe", TABLE), ("component_as_tool", TOOL)], &[Files]),
];

/// The catalog entry for a Langflow component key.
pub fn lookup(key: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.keys.contains(&key))
}

/// Langflow type names that mean the same thing (renamed in later releases).
pub fn same_type(a: &str, b: &str) -> bool {
    canonical_type(a) == canonical_type(b)
}

/// The current name of a Langflow type.
pub fn canonical_type(name: &str) -> &str {
    match name {
        "JSON" => "Data",
        "Table" => "DataFrame",
        "str" | "Text" => "Text",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_and_node_names_are_unique() {
        let mut keys = HashSet::new();
        let mut nodes = HashSet::new();
        for c in COMPONENTS {
            assert!(nodes.insert(c.node), "node {} listed twice", c.node);
            for k in c.keys {
                assert!(keys.insert(*k), "key {k} listed twice");
            }
        }
    }

    #[test]
    fn renamed_types_are_equal() {
        assert!(same_type("Data", "JSON"));
        assert!(same_type("Table", "DataFrame"));
        assert!(!same_type("Message", "Data"));
    }
}
