//! Model settings from a node's fields, shared by the nodes that call a
//! model (Language Model, Agent, Structured Output, Batch Run).
//!
//! Langflow 1.13 keeps the choice in a `model` field (a list with one
//! `{name, provider}` entry, or a connected LanguageModel), with older
//! exports using `provider` and `model_name`. An empty choice leaves the
//! host to pick its default provider and model. The API key never reaches
//! the node: the host resolves the node's key field against the run's
//! secrets.

use sandflow_sdk::host::llm::ChatMessage;
use sandflow_sdk::{Invocation, ModelSettings, Value, number, text_or, value};

/// The model a node is set to use.
pub fn settings(inv: &Invocation) -> ModelSettings {
    if let Some(Value::LanguageModel(connected)) = value(inv, "model") {
        return connected.clone();
    }
    let mut provider = text_or(inv, "provider", "");
    let mut model = text_or(inv, "model_name", "");
    match value(inv, "model") {
        Some(Value::Json(json)) => {
            if let Ok(choice) = serde_json::from_str::<serde_json::Value>(json) {
                let entry = choice.get(0).unwrap_or(&choice);
                if let Some(name) = entry.get("name").and_then(|n| n.as_str()).filter(|n| !n.is_empty()) {
                    model = name.to_owned();
                }
                if let Some(p) = entry.get("provider").and_then(|p| p.as_str()).filter(|p| !p.is_empty()) {
                    provider = p.to_owned();
                }
            }
        }
        Some(Value::Text(name)) if !name.trim().is_empty() => model = name.trim().to_owned(),
        _ => {}
    }
    ModelSettings {
        provider,
        model,
        api_key_secret: None,
        temperature: number(inv, "temperature"),
        max_tokens: number(inv, "max_tokens").filter(|n| *n > 0.0).map(|n| n.min(f64::from(u32::MAX)) as u32),
        base_url: None,
        extra: "{}".into(),
    }
}

/// A chat message without tool calls.
pub fn chat(role: &str, content: String) -> ChatMessage {
    ChatMessage { role: role.into(), content, tool_calls: Vec::new(), tool_call_id: None }
}
