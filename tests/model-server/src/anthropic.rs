//! Anthropic Messages.

use crate::openai::{content_text, pieces};
use crate::script::{self, Call, Reply, ToolSpec, Turn};
use crate::{Shared, error, sse};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `POST /v1/messages`.
pub async fn messages(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request = match shared.accept("/v1/messages", &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    if request["max_tokens"].as_u64().is_none() {
        return error(400, "max_tokens: Field required");
    }
    let model = request["model"].as_str().unwrap_or("model").to_owned();
    let mut turns = vec![Turn { role: "system".into(), content: content_text(&request["system"]), ..Turn::default() }];
    turns.extend(request["messages"].as_array().into_iter().flatten().flat_map(turns_of));
    let tools: Vec<ToolSpec> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some(ToolSpec { name: t["name"].as_str()?.to_owned(), parameters: t["input_schema"].clone() }))
        .collect();
    let input_tokens: u32 = turns.iter().map(|t| script::tokens(&t.content)).sum();
    let (text, calls) = match script::reply(&turns, &tools, None) {
        Reply::Fail(status) => return error(status, "the model failed, as the conversation asked"),
        Reply::Text(text) => (text, Vec::new()),
        Reply::ToolCalls(calls) => (String::new(), calls),
    };
    let output_tokens = script::tokens(&text);
    let stop_reason = if calls.is_empty() { "end_turn" } else { "tool_use" };
    if request["stream"].as_bool() == Some(true) {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut lines = vec![event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_local", "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 0},
            }}),
        )];
        if calls.is_empty() {
            lines.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            lines.extend(pieces(&text).map(|piece| {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                )
            }));
            lines.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
        }
        for (index, call) in calls.iter().enumerate() {
            lines.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": {
                    "type": "tool_use", "id": call.id, "name": call.name, "input": {},
                }}),
            ));
            lines.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {
                    "type": "input_json_delta", "partial_json": call.arguments.to_string(),
                }}),
            ));
            lines.push(event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
        }
        lines.push(event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}}),
        ));
        lines.push(event("message_stop", json!({"type": "message_stop"})));
        return sse(lines, shared.chunk_delay);
    }
    let content: Vec<Value> = if calls.is_empty() {
        vec![json!({"type": "text", "text": text})]
    } else {
        calls.iter().map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})).collect()
    };
    axum::Json(json!({
        "id": "msg_local",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }))
    .into_response()
}

/// One Anthropic message as turns: tool results become `tool` turns.
fn turns_of(message: &Value) -> Vec<Turn> {
    let role = message["role"].as_str().unwrap_or_default().to_owned();
    let Some(blocks) = message["content"].as_array() else {
        return vec![Turn { role, content: content_text(&message["content"]), ..Turn::default() }];
    };
    let mut turns = Vec::new();
    let mut main = Turn { role, ..Turn::default() };
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => main.content.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => main.tool_calls.push(Call {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].clone(),
            }),
            Some("tool_result") => turns.push(Turn {
                role: "tool".into(),
                content: content_text(&block["content"]),
                tool_call_id: block["tool_use_id"].as_str().map(str::to_owned),
                ..Turn::default()
            }),
            _ => {}
        }
    }
    if !main.content.is_empty() || !main.tool_calls.is_empty() || turns.is_empty() {
        turns.insert(0, main);
    }
    turns
}
