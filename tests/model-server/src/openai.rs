//! OpenAI Chat Completions and Embeddings.

use crate::script::{self, Call, Reply, ToolSpec, Turn};
use crate::{Shared, embed, error, sse};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `POST /v1/chat/completions`.
pub async fn chat_completions(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request = match shared.accept("/v1/chat/completions", &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let model = request["model"].as_str().unwrap_or("model").to_owned();
    let turns = turns(&request["messages"]);
    let tools = tools(&request["tools"]);
    let schema = request.pointer("/response_format/json_schema/schema");
    let reply = script::reply(&turns, &tools, schema);
    let prompt_tokens: u32 = turns.iter().map(|t| script::tokens(&t.content)).sum();
    let (content, calls) = match reply {
        Reply::Fail(status) => return error(status, "the model failed, as the conversation asked"),
        Reply::Text(text) => (text, Vec::new()),
        Reply::ToolCalls(calls) => (String::new(), calls),
    };
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": script::tokens(&content),
        "total_tokens": prompt_tokens + script::tokens(&content),
    });
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    if request["stream"].as_bool() == Some(true) {
        let include_usage = request.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({
                "id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        events.extend(pieces(&content).map(|piece| chunk(json!({"content": piece}), None)));
        if !calls.is_empty() {
            events.push(chunk(json!({"tool_calls": tool_calls(&calls, true)}), None));
        }
        events.push(chunk(json!({}), Some(finish)));
        if include_usage {
            events.push(json!({
                "id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [], "usage": usage,
            }));
        }
        let mut lines: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        lines.push("data: [DONE]\n\n".to_owned());
        return sse(lines, shared.chunk_delay);
    }
    let mut message =
        json!({"role": "assistant", "content": if calls.is_empty() { json!(content) } else { Value::Null }});
    if !calls.is_empty() {
        message["tool_calls"] = json!(tool_calls(&calls, false));
    }
    axum::Json(json!({
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }))
    .into_response()
}

/// `POST /v1/embeddings`.
pub async fn embeddings(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request = match shared.accept("/v1/embeddings", &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or_default().to_owned()).collect(),
        _ => return error(400, "`input` must be a string or an array of strings"),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed::embed(text)}))
        .collect();
    let tokens: u32 = inputs.iter().map(|t| script::tokens(t)).sum();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": request["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

/// Words of `text`, each with the whitespace before it: what the stream sends.
pub(crate) fn pieces(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut start = 0;
    let bounds: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| i > 0 && c.is_whitespace() && !text[..i].ends_with(char::is_whitespace))
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    bounds.into_iter().filter_map(move |end| {
        let piece = &text[start..end];
        start = end;
        (!piece.is_empty()).then(|| piece.to_owned())
    })
}

fn tool_calls(calls: &[Call], streamed: bool) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut call = json!({
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.to_string()},
            });
            if streamed {
                call["index"] = json!(i);
            }
            call
        })
        .collect()
}

fn turns(messages: &Value) -> Vec<Turn> {
    messages
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| Turn {
            role: m["role"].as_str().unwrap_or_default().to_owned(),
            content: content_text(&m["content"]),
            tool_calls: m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Call {
                    id: c["id"].as_str().unwrap_or_default().to_owned(),
                    name: c.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    arguments: c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or(Value::Null),
                })
                .collect(),
            tool_call_id: m["tool_call_id"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Message content: a string, or an array of parts whose text parts join.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

fn tools(tools: &Value) -> Vec<ToolSpec> {
    tools
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(ToolSpec {
                name: t.pointer("/function/name")?.as_str()?.to_owned(),
                parameters: t.pointer("/function/parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_keep_every_character() {
        let text = "You said:  hello\nworld ";
        let parts: Vec<String> = pieces(text).collect();
        assert_eq!(parts.concat(), text);
        assert_eq!(parts[0], "You");
        assert!(parts.len() > 3);
    }
}
