//! The native run API: `POST /v1/agents/{agent}/runs`, JSON or an SSE stream.

use super::body::{JsonBody, null_as_default};
use super::error::ApiError;
use super::progress::Step;
use super::{ApiKey, DataPlane, Execution, session_or};
use crate::{RunEvent, RunRequest, Value};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The message for the flow's input nodes.
    input: Option<String>,
    /// The conversation; a new one per run when absent or empty.
    session_id: Option<String>,
    /// `{node id or display name: {field: value}}`.
    #[serde(default, deserialize_with = "null_as_default")]
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
    let session_id = session_or(body.session_id, || uuid::Uuid::new_v4().to_string());
    let request = RunRequest {
        input_value: body.input,
        session_id: session_id.clone(),
        tweaks: body.tweaks,
        ..RunRequest::default()
    };
    if !body.stream {
        let execution = state.execute(&key, &agent, request).await?;
        return Ok(Json(response_json(&agent.id, &session_id, &execution)).into_response());
    }
    // Tokens as they come, then the run's nodes, messages and end.
    let progress = state.execute_streaming(key, agent.clone(), request)?;
    let events = progress.steps().flat_map(move |step| {
        let events: Vec<Event> = match step {
            Step::Event(RunEvent::Token { node_id, text }) => {
                vec![Event::default().event("token").data(json!({ "node_id": node_id, "text": text }).to_string())]
            }
            Step::Event(RunEvent::Input(_)) => Vec::new(),
            Step::Finished(result) => match *result {
                Ok(execution) => finished_events(&agent.id, &session_id, &execution),
                Err(error) => vec![Event::default().event("error").data(error.body().to_string())],
            },
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    // Comments while the run works without an event, for proxies that
    // cut idle connections.
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

fn outputs_json(execution: &Execution) -> Vec<serde_json::Value> {
    execution
        .outcome
        .outputs
        .iter()
        .map(|o| json!({ "node_id": o.node_id, "display_name": o.display_name, "text": text(&o.value) }))
        .collect()
}

fn usage_json(execution: &Execution) -> serde_json::Value {
    let outcome = &execution.outcome;
    json!({
        "fuel": outcome.fuel,
        "wall_ms": outcome.elapsed.as_secs_f64() * 1e3,
        "tokens_in": outcome.tokens.input,
        "tokens_out": outcome.tokens.output,
    })
}

fn response_json(agent: &str, session_id: &str, execution: &Execution) -> serde_json::Value {
    let outputs = outputs_json(execution);
    json!({
        "run_id": execution.run_id,
        "agent": agent,
        "session_id": session_id,
        "output": outputs.first(),
        "outputs": outputs,
        "usage": usage_json(execution),
    })
}

fn finished_events(agent: &str, session_id: &str, execution: &Execution) -> Vec<Event> {
    let mut events = Vec::new();
    for node in &execution.outcome.events {
        let data =
            json!({ "node_id": node.node_id, "completed": node.completed, "micros": node.elapsed.as_micros() as u64 });
        events.push(Event::default().event("node").data(data.to_string()));
    }
    for output in outputs_json(execution) {
        events.push(Event::default().event("message").data(output.to_string()));
    }
    let done =
        json!({ "run_id": execution.run_id, "agent": agent, "session_id": session_id, "usage": usage_json(execution) });
    events.push(Event::default().event("done").data(done.to_string()));
    events
}

/// The text of an output value.
pub fn text(value: &Value) -> String {
    match value {
        Value::Message(m) => m.text.clone(),
        Value::Text(t) | Value::Json(t) => t.clone(),
        other => format!("{other:?}"),
    }
}
