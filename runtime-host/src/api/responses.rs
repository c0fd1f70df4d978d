//! OpenAI's Responses API: `POST /v1/responses` (and Langflow's
//! `POST /api/v1/responses`) with `model` = the agent id, so OpenAI's SDKs
//! call an agent with `client.responses.create(…)` and
//! `client.responses.stream(…)` as they call a model.
//!
//! `input` is a string or a list of input messages (the last `user`
//! message's text is the agent's input). As in Langflow, the response's
//! id is the conversation's session: passing it back as
//! `previous_response_id` continues the conversation (an agent with
//! memory sees the earlier turns), so every response of one conversation
//! has the same id.
//!
//! A stream follows OpenAI's event sequence, each as `event: <type>` with
//! its JSON: `response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`, one
//! `response.output_text.delta` per token of the model wired into the
//! flow's output (or one with the whole answer when no model streamed),
//! `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done`, then `response.completed` with the usage,
//! or `response.failed` with the error. Langflow streams chunks of its own
//! shape here, which OpenAI's SDKs cannot follow.
//!
//! Refused with a 400, as Langflow refuses them: `tools` (an agent's tools
//! are its flow's) and `background`. Other fields (`instructions`,
//! `temperature`, …) are ignored: the seller's flow and the buyer's
//! persona decide them.

use super::body::JsonBody;
use super::error::ApiError;
use super::openai::{OpenAiError, answer_nodes, answer_text, content_text};
use super::progress::Step;
use super::{ApiKey, DataPlane, Execution, clock};
use crate::{RunEvent, RunRequest, TokenCount};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use std::convert::Infallible;
use std::sync::Arc;

/// The request body: the fields an agent can honour; others are ignored.
#[derive(Debug, Deserialize)]
pub struct ResponsesBody {
    model: String,
    input: Json_,
    /// `null` as `false`, as some proxies send it.
    stream: Option<bool>,
    previous_response_id: Option<String>,
    #[serde(default)]
    tools: Option<Vec<Json_>>,
    background: Option<bool>,
}

impl ResponsesBody {
    /// The agent's input: the string, or the last `user` message's text.
    fn input_text(&self) -> Result<String, ApiError> {
        match &self.input {
            Json_::String(text) => Ok(text.clone()),
            Json_::Array(items) => items
                .iter()
                .rev()
                .find(|item| item.get("role").and_then(Json_::as_str) == Some("user"))
                .map(|item| content_text(item.get("content").unwrap_or(&Json_::Null)))
                .ok_or_else(|| ApiError::BadRequest("`input` needs at least one message with role `user`".into())),
            _ => Err(ApiError::BadRequest("`input` must be a string or a list of messages".into())),
        }
    }
}

/// `POST /v1/responses`, `POST /api/v1/responses`. Refusals, the key's
/// included, come in OpenAI's error shape.
pub async fn create(
    State(state): State<Arc<DataPlane>>,
    key: Result<ApiKey, ApiError>,
    body: Result<JsonBody<ResponsesBody>, ApiError>,
) -> Result<Response, OpenAiError> {
    Ok(respond(state, key?, body?.0).await?)
}

async fn respond(state: Arc<DataPlane>, key: ApiKey, body: ResponsesBody) -> Result<Response, ApiError> {
    if body.model.is_empty() {
        return Err(ApiError::BadRequest("`model` must name the agent to call".into()));
    }
    if body.tools.as_ref().is_some_and(|tools| !tools.is_empty()) {
        return Err(ApiError::BadRequest("`tools` are not taken: an agent's tools are its flow's own".into()));
    }
    if body.background == Some(true) {
        return Err(ApiError::BadRequest("`background` responses are not served; leave it out".into()));
    }
    let input = body.input_text()?;
    let agent = state.agent_for(&key, &body.model)?;
    let previous = body.previous_response_id.filter(|id| !id.trim().is_empty());
    let session = previous.clone().unwrap_or_else(|| format!("resp_{}", uuid::Uuid::new_v4().simple()));
    let request = RunRequest { input_value: Some(input), session_id: session.clone(), ..RunRequest::default() };
    let shape = Shape { id: session, model: body.model, previous, created_at: clock::unix_seconds() };
    if body.stream != Some(true) {
        let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
        let text = answer_text(&outcome);
        let item = shape.message(&format!("msg_{run_id}"), "completed", &text);
        return Ok(Json(shape.response("completed", json!([item]), Some(outcome.tokens))).into_response());
    }
    let answering = answer_nodes(&agent.flow);
    let progress = state.execute_streaming(key, agent, request)?;
    let item_id = format!("msg_{}", progress.run_id());
    let mut events = Events::default();
    let opening = vec![
        events.next("response.created", json!({ "response": shape.response("in_progress", json!([]), None) })),
        events.next("response.in_progress", json!({ "response": shape.response("in_progress", json!([]), None) })),
        events.next(
            "response.output_item.added",
            json!({ "output_index": 0, "item": shape.message(&item_id, "in_progress", "") }),
        ),
        events.next(
            "response.content_part.added",
            json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "part": text_part("") }),
        ),
    ];
    let mut text = String::new();
    let rest = progress.steps().flat_map(move |step| {
        let frames = match step {
            Step::Event(RunEvent::Token { node_id, text: token }) if answering.contains(&node_id) => {
                text.push_str(&token);
                vec![events.next("response.output_text.delta", delta(&item_id, &token))]
            }
            // Another model's tokens (an earlier agent of a chain) are not the answer.
            Step::Event(_) => Vec::new(),
            Step::Finished(result) => match *result {
                Ok(Execution { outcome, .. }) => {
                    let mut frames = Vec::new();
                    let answer = answer_text(&outcome);
                    if text.is_empty() && !answer.is_empty() {
                        frames.push(events.next("response.output_text.delta", delta(&item_id, &answer)));
                        text = answer;
                    }
                    let place = json!({ "item_id": item_id, "output_index": 0, "content_index": 0 });
                    let mut done = place.clone();
                    done["text"] = json!(text);
                    done["logprobs"] = json!([]);
                    frames.push(events.next("response.output_text.done", done));
                    let mut part_done = place;
                    part_done["part"] = text_part(&text);
                    frames.push(events.next("response.content_part.done", part_done));
                    let item = shape.message(&item_id, "completed", &text);
                    frames.push(events.next("response.output_item.done", json!({ "output_index": 0, "item": item })));
                    let response = shape.response("completed", json!([item]), Some(outcome.tokens));
                    frames.push(events.next("response.completed", json!({ "response": response })));
                    frames
                }
                Err(error) => {
                    let mut response = shape.response("failed", json!([]), None);
                    response["error"] = failure(&error);
                    vec![events.next("response.failed", json!({ "response": response }))]
                }
            },
        };
        futures_util::stream::iter(frames)
    });
    let frames = futures_util::stream::iter(opening).chain(rest).map(Ok::<_, Infallible>);
    // Comments while a run works without a token, for proxies that cut
    // idle connections; SDKs skip them.
    Ok(Sse::new(frames).keep_alive(KeepAlive::default()).into_response())
}

/// What every response object of one request repeats.
struct Shape {
    id: String,
    model: String,
    previous: Option<String>,
    created_at: u64,
}

impl Shape {
    /// OpenAI's `Response` object.
    fn response(&self, status: &str, output: Json_, tokens: Option<TokenCount>) -> Json_ {
        let usage = tokens.map(|t| {
            json!({
                "input_tokens": t.input,
                "input_tokens_details": { "cached_tokens": 0, "cache_write_tokens": 0 },
                "output_tokens": t.output,
                "output_tokens_details": { "reasoning_tokens": 0 },
                "total_tokens": t.input + t.output,
            })
        });
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "instructions": null,
            "max_output_tokens": null,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": false,
            "previous_response_id": self.previous,
            "reasoning": { "effort": null, "summary": null },
            "store": true,
            "temperature": null,
            "text": { "format": { "type": "text" } },
            "tool_choice": "none",
            "tools": [],
            "top_p": null,
            "truncation": "disabled",
            "usage": usage,
            "metadata": {},
        })
    }

    /// The assistant's message output item.
    fn message(&self, id: &str, status: &str, text: &str) -> Json_ {
        let content = if status == "in_progress" { json!([]) } else { json!([text_part(text)]) };
        json!({ "type": "message", "id": id, "status": status, "role": "assistant", "content": content })
    }
}

fn text_part(text: &str) -> Json_ {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn delta(item_id: &str, text: &str) -> Json_ {
    json!({ "item_id": item_id, "output_index": 0, "content_index": 0, "delta": text, "logprobs": [] })
}

/// A failed response's `error`, with one of the codes OpenAI's response
/// errors use.
fn failure(error: &ApiError) -> Json_ {
    let code = if error.status_and_code().0 == axum::http::StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_exceeded"
    } else {
        "server_error"
    };
    json!({ "code": code, "message": error.message() })
}

/// Stream events, numbered as OpenAI numbers them.
#[derive(Default)]
struct Events {
    sequence: u64,
}

impl Events {
    /// The next event: `kind` as both its SSE name and its `type`.
    fn next(&mut self, kind: &str, mut data: Json_) -> Event {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        Event::default().event(kind).data(data.to_string())
    }
}
