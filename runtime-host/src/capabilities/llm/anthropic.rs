//! The `anthropic` backend: Anthropic Messages.

use super::stream::Accumulator;
use crate::bindings::node::sandflow::host::llm::{Completion, CompletionRequest, TokenUsage, ToolCall};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use serde_json::{Value, json};

/// Tokens asked for when the node sets no cap (Anthropic requires one).
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The request body. System messages become `system`; tool results become
/// `tool_result` blocks of a user message, consecutive ones merged.
pub fn body(model: &str, request: &CompletionRequest, stream: bool) -> Result<Value, CapabilityError> {
    let system: Vec<&str> =
        request.messages.iter().filter(|m| m.role == "system").map(|m| m.content.as_str()).collect();
    let mut messages: Vec<Value> = Vec::new();
    for m in request.messages.iter().filter(|m| m.role != "system") {
        let (role, blocks) = match m.role.as_str() {
            "tool" => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": m.tool_call_id.clone().unwrap_or_default(), "content": m.content}),
                ],
            ),
            "assistant" => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
                }
                ("assistant", blocks)
            }
            _ => ("user", vec![json!({"type": "text", "text": m.content})]),
        };
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(content) = last["content"].as_array_mut() {
                    content.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": request.model.max_tokens.filter(|&n| n > 0).unwrap_or(DEFAULT_MAX_TOKENS),
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(t) = request.model.temperature {
        body["temperature"] = json!(t);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| Ok(json!({"name": t.name, "description": t.description, "input_schema": schema(&t.parameters, &t.name)?})))
            .collect::<Result<Vec<_>, CapabilityError>>()?
            .into();
    }
    if stream {
        body["stream"] = json!(true);
    }
    Ok(body)
}

/// A tool's parameter schema as JSON; an empty one means no arguments.
pub fn schema(parameters: &str, tool: &str) -> Result<Value, CapabilityError> {
    if parameters.trim().is_empty() {
        return Ok(json!({"type": "object", "properties": {}}));
    }
    serde_json::from_str(parameters)
        .map_err(|e| CapabilityError::Invalid(format!("the parameters of tool `{tool}` are not a JSON schema: {e}")))
}

/// A JSON answer.
pub fn parse(json: &Value) -> Result<Completion, String> {
    let content = json["content"].as_array().ok_or("the answer has no content")?;
    let text: String = content.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
    let calls = content
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| ToolCall {
            id: b["id"].as_str().unwrap_or_default().to_owned(),
            name: b["name"].as_str().unwrap_or_default().to_owned(),
            arguments: b["input"].to_string(),
        })
        .collect();
    let usage = TokenUsage {
        input_tokens: count(&json["usage"], "input_tokens"),
        output_tokens: count(&json["usage"], "output_tokens"),
    };
    Ok(super::completion(text, calls, finish_reason(json["stop_reason"].as_str()), usage))
}

/// Applies one streamed event; returns the text it adds.
pub fn apply_event(acc: &mut Accumulator, event: &str, data: &str) -> Option<String> {
    let data: Value = serde_json::from_str(data).ok()?;
    match event {
        "message_start" => acc.usage.input_tokens = count(&data["message"]["usage"], "input_tokens"),
        "content_block_start" if data["content_block"]["type"] == "tool_use" => {
            // Blocks are numbered across text and tool use; calls are kept apart.
            let block = &data["content_block"];
            let next = acc.calls.len();
            if let Some(call) = acc.call(next) {
                call.id = block["id"].as_str().unwrap_or_default().to_owned();
                call.name = block["name"].as_str().unwrap_or_default().to_owned();
            }
        }
        "content_block_delta" => match data["delta"]["type"].as_str() {
            Some("text_delta") => {
                let text = data["delta"]["text"].as_str()?;
                acc.text.push_str(text);
                return Some(text.to_owned());
            }
            Some("input_json_delta") => {
                let piece = data["delta"]["partial_json"].as_str()?;
                acc.calls.last_mut()?.arguments.push_str(piece);
            }
            _ => {}
        },
        "message_delta" => {
            acc.finish = finish_reason(data["delta"]["stop_reason"].as_str());
            acc.usage.output_tokens = count(&data["usage"], "output_tokens");
        }
        _ => {}
    }
    None
}

/// Anthropic's stop reasons in OpenAI's words, which nodes understand.
fn finish_reason(reason: Option<&str>) -> String {
    match reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens") => "length",
        _ => "stop",
    }
    .to_owned()
}

fn count(usage: &Value, key: &str) -> u32 {
    usage[key].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::node::sandflow::host::llm::ChatMessage;
    use crate::bindings::node::sandflow::host::types::ModelSettings;

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    #[test]
    fn system_goes_apart_and_tool_results_merge() {
        let mut results = [message("tool", "1"), message("tool", "2")];
        results[0].tool_call_id = Some("a".into());
        results[1].tool_call_id = Some("b".into());
        let request = CompletionRequest {
            model: ModelSettings {
                provider: String::new(),
                model: String::new(),
                api_key_secret: None,
                temperature: None,
                max_tokens: None,
                base_url: None,
                extra: "{}".into(),
            },
            messages: [vec![message("system", "be brief"), message("user", "hi")], results.to_vec()].concat(),
            tools: Vec::new(),
            stream_tokens: false,
            response_schema: None,
        };
        let body = body("claude", &request, false).expect("valid");
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        let messages = body["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 1, "user text and both results merge into one user turn: {body}");
        assert_eq!(messages[0]["content"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn streamed_events_add_up() {
        let mut acc = Accumulator::default();
        let events = [
            ("message_start", r#"{"message":{"usage":{"input_tokens":9}}}"#),
            ("content_block_delta", r#"{"index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
            ("content_block_start", r#"{"index":1,"content_block":{"type":"tool_use","id":"t","name":"calc"}}"#),
            ("content_block_delta", r#"{"index":1,"delta":{"type":"input_json_delta","partial_json":"{\"e\":1}"}}"#),
            ("message_delta", r#"{"delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}"#),
        ];
        let text: String = events.iter().filter_map(|(e, d)| apply_event(&mut acc, e, d)).collect();
        assert_eq!(text, "Hi");
        let completion = acc.finish();
        assert_eq!(completion.finish_reason, "tool_calls");
        assert_eq!(completion.message.tool_calls[0].arguments, r#"{"e":1}"#);
        assert_eq!((completion.usage.input_tokens, completion.usage.output_tokens), (9, 4));
    }
}
