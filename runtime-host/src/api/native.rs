//! The native run API: `POST /v1/agents/{agent}/runs`, JSON or an SSE stream.

use super::body::JsonBody;
use super::error::ApiError;
use super::{ApiKey, DataPlane, Execution};
use crate::{RunRequest, Value};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The message for the flow's input nodes.
    input: Option<String>,
    /// The conversation; a new one per run when absent.
    session_id: Option<String>,
    /// `{node id or display name: {field: value}}`.
    #[serde(default)]
    tweaks: serde_json::Map<String, serde_json::Value>,
    /// Answer as a server-sent event stream.
    #[serde(default)]
    stream: bool,
}

/// `POST /v1/agents/{agent}/runs`.
pub async fn run(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(agent): Path<String>,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    let agent = state.agent_for(&key, &agent)?;
    let session_id = body.session_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = RunRequest {
        input_value: body.input,
        session_id: session_id.clone(),
        tweaks: body.tweaks,
        ..RunRequest::default()
    };
    let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
    let outputs: Vec<serde_json::Value> = outcome
        .outputs
        .iter()
        .map(|o| json!({ "node_id": o.node_id, "display_name": o.display_name, "text": text(&o.value) }))
        .collect();
    let usage = json!({
        "fuel": outcome.fuel,
        "wall_ms": outcome.elapsed.as_secs_f64() * 1e3,
        "tokens_in": 0,
        "tokens_out": 0,
    });
    if !body.stream {
        return Ok(Json(json!({
            "run_id": run_id,
            "agent": agent.id,
            "session_id": session_id,
            "output": outputs.first(),
            "outputs": outputs,
            "usage": usage,
        }))
        .into_response());
    }
    let mut events: Vec<Result<Event, Infallible>> = Vec::new();
    for node in &outcome.events {
        let data =
            json!({ "node_id": node.node_id, "completed": node.completed, "micros": node.elapsed.as_micros() as u64 });
        events.push(Ok(Event::default().event("node").data(data.to_string())));
    }
    for output in &outputs {
        events.push(Ok(Event::default().event("message").data(output.to_string())));
    }
    let done = json!({ "run_id": run_id, "session_id": session_id, "usage": usage });
    events.push(Ok(Event::default().event("done").data(done.to_string())));
    Ok(Sse::new(futures_util::stream::iter(events)).into_response())
}

/// The text of an output value.
pub fn text(value: &Value) -> String {
    match value {
        Value::Message(m) => m.text.clone(),
        Value::Text(t) | Value::Json(t) => t.clone(),
        other => format!("{other:?}"),
    }
}
