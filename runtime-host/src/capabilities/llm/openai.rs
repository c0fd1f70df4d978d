//! The `openai` backend: Chat Completions, as OpenAI, Azure OpenAI, Ollama,
//! vLLM, llama.cpp and most other servers speak it.

use super::stream::Accumulator;
use crate::bindings::node::sandflow::host::llm::{Completion, CompletionRequest, TokenUsage, ToolCall};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use serde_json::{Map, Value, json};

/// The request body.
pub fn body(model: &str, request: &CompletionRequest, stream: bool) -> Result<Value, CapabilityError> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let mut message = json!({"role": m.role, "content": m.content});
            if !m.tool_calls.is_empty() {
                message["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                if m.content.is_empty() {
                    message["content"] = Value::Null;
                }
            }
            if let Some(id) = &m.tool_call_id {
                message["tool_call_id"] = json!(id);
            }
            message
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = request.model.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.model.max_tokens.filter(|&n| n > 0) {
        body.insert("max_tokens".into(), json!(n));
    }
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                let parameters = super::anthropic::schema(&t.parameters, &t.name)?;
                Ok(json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": parameters}}))
            })
            .collect::<Result<Vec<_>, CapabilityError>>()?;
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(schema) = &request.response_schema {
        let schema: Value = serde_json::from_str(schema)
            .map_err(|e| CapabilityError::Invalid(format!("the response schema is not JSON: {e}")))?;
        body.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}),
        );
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(body))
}

/// A JSON answer.
pub fn parse(json: &Value) -> Result<Completion, String> {
    let choice = json.pointer("/choices/0").ok_or("the answer has no choices")?;
    let message = &choice["message"];
    let calls = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ToolCall {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            arguments: c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}").to_owned(),
        })
        .collect();
    Ok(super::completion(
        message["content"].as_str().unwrap_or_default().to_owned(),
        calls,
        choice["finish_reason"].as_str().unwrap_or("stop").to_owned(),
        usage(&json["usage"]),
    ))
}

/// Applies one streamed chunk; returns the text it adds.
pub fn apply_chunk(acc: &mut Accumulator, data: &str) -> Option<String> {
    if data.trim() == "[DONE]" {
        return None;
    }
    let chunk: Value = serde_json::from_str(data).ok()?;
    if chunk["usage"].is_object() {
        acc.usage = usage(&chunk["usage"]);
    }
    let choice = chunk.pointer("/choices/0")?;
    if let Some(reason) = choice["finish_reason"].as_str() {
        acc.finish = reason.to_owned();
    }
    let delta = &choice["delta"];
    for call in delta["tool_calls"].as_array().into_iter().flatten() {
        let index = call["index"].as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(0);
        if let Some(partial) = acc.call(index) {
            if let Some(id) = call["id"].as_str() {
                partial.id = id.to_owned();
            }
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                partial.name.push_str(name);
            }
            if let Some(arguments) = call.pointer("/function/arguments").and_then(Value::as_str) {
                partial.arguments.push_str(arguments);
            }
        }
    }
    let text = delta["content"].as_str()?;
    acc.text.push_str(text);
    Some(text.to_owned())
}

fn usage(usage: &Value) -> TokenUsage {
    let count = |key: &str| usage[key].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    TokenUsage { input_tokens: count("prompt_tokens"), output_tokens: count("completion_tokens") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_calls_and_usage() {
        let answer = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}
            ]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3},
        });
        let completion = parse(&answer).expect("parses");
        assert_eq!(completion.finish_reason, "tool_calls");
        assert_eq!(completion.message.tool_calls[0].name, "add");
        assert_eq!(completion.usage.input_tokens, 12);
    }

    #[test]
    fn streamed_chunks_add_up() {
        let mut acc = Accumulator::default();
        let chunks = [
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":2}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
            "[DONE]",
        ];
        let pieces: Vec<String> = chunks.iter().filter_map(|c| apply_chunk(&mut acc, c)).collect();
        assert_eq!(pieces.concat(), "Hello");
        let completion = acc.finish();
        assert_eq!(completion.message.content, "Hello");
        assert_eq!(completion.message.tool_calls[0].arguments, r#"{"x":2}"#);
        assert_eq!(completion.usage.output_tokens, 2);
    }
}
