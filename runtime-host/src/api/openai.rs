//! The OpenAI-compatible API: `POST /v1/chat/completions` with `model` = the
//! agent id, so every OpenAI SDK can call an agent.

use super::body::JsonBody;
use super::error::ApiError;
use super::{ApiKey, DataPlane, Execution, clock, native};
use crate::RunRequest;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The request body (the fields an agent can honour; others are ignored,
/// as OpenAI-compatible servers do).
#[derive(Debug, Default, Deserialize)]
pub struct ChatBody {
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    /// Used as the session id, so an agent with memory keeps the conversation.
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: serde_json::Value,
}

impl ChatMessage {
    /// Text content: a string, or the text parts of a content array.
    fn text(&self) -> String {
        match &self.content {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    JsonBody(body): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    if body.model.is_empty() {
        return Err(ApiError::BadRequest("`model` must name the agent to call".into()));
    }
    let input = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(ChatMessage::text)
        .ok_or_else(|| ApiError::BadRequest("`messages` needs at least one message with role `user`".into()))?;
    let agent = state.agent_for(&key, &body.model)?;
    let session_id = body.user.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = RunRequest { input_value: Some(input), session_id, ..RunRequest::default() };
    let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
    let content = outcome.outputs.first().map(|o| native::text(&o.value)).unwrap_or_default();
    let id = format!("chatcmpl-{run_id}");
    let created = clock::unix_seconds();
    if !body.stream {
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop",
            }],
            "usage": { "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 },
        }))
        .into_response());
    }
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
        .to_string()
    };
    let events: Vec<Result<Event, Infallible>> = vec![
        Ok(Event::default().data(chunk(json!({ "role": "assistant", "content": content }), None))),
        Ok(Event::default().data(chunk(json!({}), Some("stop")))),
        Ok(Event::default().data("[DONE]")),
    ];
    Ok(Sse::new(futures_util::stream::iter(events)).into_response())
}
