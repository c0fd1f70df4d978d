//! Language Model (`LanguageModelComponent`): sends the input, with the
//! system message, to the chosen model and answers its text
//! (`text_output`), or hands the model's settings to another node
//! (`model_output`) without calling it.

use crate::model::{chat, settings};
use sandflow_sdk::host::llm::{self, CompletionRequest};
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Value, capability_message, message, output, port, text_or,
};

/// Type name in the library.
pub const NAME: &str = "language-model";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Language Model".into(),
        description: "Runs a language model given a specified provider.".into(),
        inputs: vec![
            port("input_value", &["Message"], false),
            port("system_message", &["Message"], false),
            port("model", &["LanguageModel"], false),
            port("temperature", &[], false),
            port("max_tokens", &[], false),
        ],
        outputs: vec![port("text_output", &["Message"], false), port("model_output", &["LanguageModel"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let model = settings(inv);
    let mut outputs = Vec::new();
    if inv.wanted.iter().any(|w| w == "model_output") {
        outputs.push(output("model_output", Value::LanguageModel(model.clone())));
    }
    if !inv.wanted.is_empty() && !inv.wanted.iter().any(|w| w == "text_output") {
        return Ok(outputs);
    }
    let input = text_or(inv, "input_value", "");
    let system = text_or(inv, "system_message", "");
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(chat("system", system));
    }
    messages.push(chat("user", input));
    let request = CompletionRequest { model, messages, tools: Vec::new(), stream_tokens: true, response_schema: None };
    let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
    let answer = message(completion.message.content, "Machine", "AI", &inv.session_id);
    outputs.push(output("text_output", Value::Message(answer)));
    Ok(outputs)
}
