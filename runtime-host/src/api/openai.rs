//! The OpenAI-compatible API: `POST /v1/chat/completions` with `model` = the
//! agent id, so every OpenAI SDK can call an agent (the Responses API is
//! [`super::responses`]), and `GET /v1/models[/{model}]`, the agents the
//! key may call, as OpenAI lists models (tools that speak OpenAI's API ask
//! for it before they offer a model).

use super::body::JsonBody;
use super::error::ApiError;
use super::keys::KeyError;
use super::progress::Step;
use super::{ApiKey, DataPlane, Execution, clock, native, session_or};
use crate::{RunEvent, RunRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sandflow_flow_compiler::catalog::Role;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The request body (the fields an agent can honour; others are ignored,
/// as OpenAI-compatible servers do).
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    /// `{"include_usage": true}`: a last chunk carries the token usage.
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// Used as the session id, so an agent with memory keeps the conversation.
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// OpenAI's `usage` object.
fn usage_json(tokens: crate::TokenCount) -> serde_json::Value {
    let (input, output) = (tokens.input, tokens.output);
    json!({ "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output })
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
        content_text(&self.content)
    }
}

/// A message's text content, as OpenAI's APIs send it: a string, or the
/// text parts of a content array.
pub(super) fn content_text(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The run's answer: the text of its first output.
pub(super) fn answer_text(outcome: &crate::RunOutcome) -> String {
    outcome.outputs.first().map(|o| native::text(&o.value)).unwrap_or_default()
}

/// `POST /v1/chat/completions`. Refusals, the key's included, come in
/// OpenAI's error shape.
pub async fn chat_completions(
    State(state): State<Arc<DataPlane>>,
    key: Result<ApiKey, ApiError>,
    body: Result<JsonBody<ChatBody>, ApiError>,
) -> Result<Response, OpenAiError> {
    Ok(complete(state, key?, body?.0).await?)
}

/// `GET /v1/models`: the agents of the key's tenant it may call, by id.
pub async fn models(
    State(state): State<Arc<DataPlane>>,
    key: Result<ApiKey, ApiError>,
) -> Result<Json<serde_json::Value>, OpenAiError> {
    let key = key?;
    key.require_run("listing models")?;
    state.limit_rate(&key)?;
    let claims = &key.claims;
    let data: Vec<_> = state
        .agents
        .of_tenant(&claims.tenant, &claims.agents)
        .iter()
        .map(|(agent, since)| model_json(&agent.id, *since, &agent.tenant))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// `GET /v1/models/{model}`: one agent the key may call.
pub async fn model(
    State(state): State<Arc<DataPlane>>,
    key: Result<ApiKey, ApiError>,
    Path(model): Path<String>,
) -> Result<Json<serde_json::Value>, OpenAiError> {
    let key = key?;
    key.require_run("looking up models")?;
    state.limit_rate(&key)?;
    let agent = state.agent_for(&key, &model)?;
    let since = state.agents.since(&agent.id).unwrap_or_default();
    Ok(Json(model_json(&agent.id, since, &agent.tenant)))
}

/// OpenAI's model object for an agent.
fn model_json(id: &str, created: u64, owner: &str) -> serde_json::Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": owner })
}

/// An [`ApiError`] as OpenAI's SDKs read one:
/// `{"error": {"message", "type", "param", "code"}}`.
pub struct OpenAiError(ApiError);

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let (status, body) = (status(&self.0), error_body(&self.0));
        let mut response = self.0.respond(body);
        *response.status_mut() = status;
        response
    }
}

/// The error's status; a missing key is 401, as OpenAI answers and its
/// SDKs expect (Langflow answers 403, which its route keeps).
fn status(error: &ApiError) -> StatusCode {
    match error {
        ApiError::Key(KeyError::Missing) => StatusCode::UNAUTHORIZED,
        other => other.status_and_code().0,
    }
}

pub(super) fn error_body(error: &ApiError) -> serde_json::Value {
    let code = error.status_and_code().1;
    let kind = match status(error).as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 if code == "quota_exhausted" => "insufficient_quota",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({ "error": { "message": error.message(), "type": kind, "param": null, "code": code } })
}

async fn complete(state: Arc<DataPlane>, key: ApiKey, body: ChatBody) -> Result<Response, ApiError> {
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
    let session_id = session_or(body.user.clone(), || uuid::Uuid::new_v4().to_string());
    let request = RunRequest { input_value: Some(input), session_id, ..RunRequest::default() };
    let created = clock::unix_seconds();
    if !body.stream {
        let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
        let content = answer_text(&outcome);
        return Ok(Json(json!({
            "id": format!("chatcmpl-{run_id}"),
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop",
            }],
            "usage": usage_json(outcome.tokens),
        }))
        .into_response());
    }
    // Chunks as the agent's models produce tokens; when no model streamed,
    // the answer comes as one chunk at the end.
    let answering = answer_nodes(&agent.flow);
    let progress = state.execute_streaming(key, agent, request)?;
    let id = format!("chatcmpl-{}", progress.run_id());
    let model = body.model;
    let include_usage = body.stream_options.unwrap_or_default().include_usage;
    let frame = move |choices: serde_json::Value| json!({ "id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices });
    let usage_frame = frame.clone();
    let chunk = move |delta: serde_json::Value, finish: Option<&str>| {
        frame(json!([{ "index": 0, "delta": delta, "finish_reason": finish }])).to_string()
    };
    // The usage chunk: no choices, the run's tokens (as OpenAI sends it).
    let usage_chunk = move |tokens| {
        let mut last = usage_frame(json!([]));
        last["usage"] = usage_json(tokens);
        last.to_string()
    };
    let mut streamed = false;
    let first =
        futures_util::stream::once(std::future::ready(chunk(json!({ "role": "assistant", "content": "" }), None)));
    let rest = progress.steps().flat_map(move |step| {
        let data: Vec<String> = match step {
            Step::Event(RunEvent::Token { node_id, text }) if answering.contains(&node_id) => {
                streamed = true;
                vec![chunk(json!({ "content": text }), None)]
            }
            // Another model's tokens (an earlier agent of a chain) are not the answer.
            Step::Event(RunEvent::Token { .. }) => Vec::new(),
            Step::Event(RunEvent::Input(_)) => Vec::new(),
            Step::Finished(result) => match *result {
                Ok(Execution { outcome, .. }) => {
                    let mut data = Vec::new();
                    if !streamed {
                        let content = answer_text(&outcome);
                        data.push(chunk(json!({ "content": content }), None));
                    }
                    data.push(chunk(json!({}), Some("stop")));
                    if include_usage {
                        data.push(usage_chunk(outcome.tokens));
                    }
                    data
                }
                Err(error) => vec![error_body(&error).to_string()],
            },
        };
        futures_util::stream::iter(data)
    });
    let done = futures_util::stream::once(std::future::ready("[DONE]".to_owned()));
    let events = first.chain(rest).chain(done).map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    // Comments while a run works without a token (tools, say), so proxies
    // that cut idle connections leave the stream be; SDKs skip them.
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The nodes whose tokens are the answer: those wired straight into an
/// output node. In a chain of agents, only the last one's tokens are what
/// the non-streamed `content` holds; a model whose text a later node
/// reworks (a parser, another agent) streams nothing here, and its
/// answer comes whole at the end.
pub(super) fn answer_nodes(flow: &crate::FlowComponent) -> Vec<String> {
    let plan = flow.plan();
    let is_output = |index: u32| {
        plan.nodes.get(index as usize).is_some_and(|node| matches!(node.role, Role::ChatOutput | Role::TextOutput))
    };
    plan.edges
        .iter()
        .filter(|edge| !edge.feedback && is_output(edge.to))
        .filter_map(|edge| plan.nodes.get(edge.from as usize).map(|node| node.id.clone()))
        .collect()
}
