//! Example custom node: counts the words and characters of a text.
//!
//! Field `text` (Message or text) → output `data` (Data with `words`,
//! `characters` and `text`) and output `message` ("N words"). It logs one
//! line through the host's `log` capability.

use sandflow_sdk::{Descriptor, Invocation, Level, Node, NodeError, Output, Value, port};

struct WordCount;

impl Node for WordCount {
    fn describe() -> Vec<Descriptor> {
        vec![Descriptor {
            type_name: "WordCount".into(),
            display_name: "Word Count".into(),
            description: "Counts the words and characters of a text.".into(),
            inputs: vec![port("text", &["Message", "Text"], true)],
            outputs: vec![port("data", &["Data"], false), port("message", &["Message"], false)],
        }]
    }

    fn run(invocation: Invocation) -> Result<Vec<Output>, NodeError> {
        let text = sandflow_sdk::text(&invocation, "text")?;
        let words = text.split_whitespace().count();
        let characters = text.chars().count();
        sandflow_sdk::log(Level::Info, &format!("{}: {words} words", invocation.node_id));
        let mut outputs = Vec::new();
        for wanted in &invocation.wanted {
            let value = match wanted.as_str() {
                "data" => sandflow_sdk::data(
                    &serde_json::json!({"text": text, "words": words, "characters": characters}),
                    "text",
                ),
                "message" => Value::Text(format!("{words} words")),
                other => return Err(NodeError::InvalidInput(format!("WordCount has no output `{other}`"))),
            };
            outputs.push(Output { name: wanted.clone(), value });
        }
        Ok(outputs)
    }
}

sandflow_sdk::export_node!(WordCount);
