//! The Langflow-compatible run API: `POST /api/v1/run/{flow_id_or_endpoint_name}`
//! with Langflow's request, response and `?stream=true` event stream, and
//! `x-api-key` auth, so existing Langflow clients and embeds work unchanged.

use super::body::JsonBody;
use super::error::ApiError;
use super::progress::Step;
use super::{ApiKey, DataPlane, Execution, clock};
use crate::{FlowOutput, InputType, Message, RunEvent, RunOutcome, RunRequest, Value};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

/// Langflow's run request body. Unknown fields are ignored, as Langflow does.
#[derive(Debug, Default, Deserialize)]
pub struct RunBody {
    input_value: Option<String>,
    #[serde(default = "chat")]
    input_type: String,
    #[serde(default = "chat")]
    output_type: String,
    output_component: Option<String>,
    #[serde(default)]
    tweaks: serde_json::Map<String, Json_>,
    session_id: Option<String>,
}

fn chat() -> String {
    "chat".into()
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    stream: bool,
}

/// `POST /api/v1/run/{flow}`.
pub async fn run(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
    Query(query): Query<RunQuery>,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    let input_type = match body.input_type.as_str() {
        "chat" => InputType::Chat,
        "text" => InputType::Text,
        "any" => InputType::Any,
        other => return Err(ApiError::BadRequest(format!("input_type `{other}` is not one of chat, text, any"))),
    };
    if !matches!(body.output_type.as_str(), "chat" | "text" | "any" | "debug") {
        return Err(ApiError::BadRequest(format!(
            "output_type `{}` is not one of chat, text, any, debug",
            body.output_type
        )));
    }
    let agent = state.agent_for(&key, &flow)?;
    // Without a session, Langflow uses the flow id.
    let session_id = body.session_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| agent.flow_id.clone());
    let request = RunRequest {
        input_value: body.input_value.clone(),
        input_type,
        session_id: session_id.clone(),
        tweaks: body.tweaks.clone(),
    };
    if !query.stream {
        let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
        return Ok(Json(response_json(&body, &outcome, &session_id, &agent.flow_id, &run_id)).into_response());
    }
    // Langflow's stream: one JSON object per event, each followed by a blank
    // line: the user's message, tokens as they come, the answers, the end.
    let progress = state.execute_streaming(key, agent.clone(), request)?;
    let flow_id = agent.flow_id.clone();
    let run_id = progress.run_id().to_owned();
    // Tokens carry the id of the message they build, one per streaming node.
    let mut message_ids: HashMap<String, String> = HashMap::new();
    let mut input_sent = false;
    let events = progress.steps().map(move |step| {
        let mut out = String::new();
        match step {
            Step::Event(RunEvent::Input(input)) => {
                input_sent = true;
                push_event(&mut out, "add_message", message_json(&input, &flow_id, &run_id, Some(&new_id())));
            }
            Step::Event(RunEvent::Token { node_id, text }) => {
                let id = message_ids.entry(node_id).or_insert_with(new_id);
                push_event(&mut out, "token", json!({ "chunk": text, "id": id }));
            }
            Step::Finished(result) => match *result {
                Ok(Execution { outcome, run_id }) => {
                    if !input_sent {
                        for input in &outcome.inputs {
                            push_event(
                                &mut out,
                                "add_message",
                                message_json(input, &flow_id, &run_id, Some(&new_id())),
                            );
                        }
                    }
                    for output in selected(&body, &outcome) {
                        let id = output.source.as_ref().and_then(|(node, _)| message_ids.get(node)).cloned();
                        let id = id.unwrap_or_else(new_id);
                        push_event(&mut out, "add_message", message_json(output, &flow_id, &run_id, Some(&id)));
                    }
                    let response = response_json(&body, &outcome, &session_id, &flow_id, &run_id);
                    push_event(&mut out, "end", json!({ "result": response }));
                }
                Err(error) => push_event(&mut out, "error", json!({ "error": error.body()["detail"] })),
            },
        }
        Ok::<_, Infallible>(out)
    });
    Ok(([(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")], Body::from_stream(events)).into_response())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn push_event(out: &mut String, event: &str, data: Json_) {
    out.push_str(&json!({ "event": event, "data": data }).to_string());
    out.push_str("\n\n");
}

/// The outputs the caller asked for, as Langflow picks them: an output
/// vertex whose id contains `output_type` (`chat`, `text`; `any` and `debug`
/// take all), narrowed to `output_component` when given.
fn selected<'a>(body: &'a RunBody, outcome: &'a RunOutcome) -> impl Iterator<Item = &'a FlowOutput> + 'a {
    let kind = body.output_type.to_ascii_lowercase();
    outcome.outputs.iter().filter(move |o| {
        let by_type = matches!(kind.as_str(), "any" | "debug") || o.node_id.to_ascii_lowercase().contains(&kind);
        let by_component =
            body.output_component.as_deref().is_none_or(|c| c.is_empty() || c == o.node_id || c == o.display_name);
        by_type && by_component
    })
}

/// Langflow's `RunResponse`.
pub fn response_json(body: &RunBody, outcome: &RunOutcome, session_id: &str, flow_id: &str, run_id: &str) -> Json_ {
    let outputs: Vec<Json_> = selected(body, outcome).map(|o| result_data(o, flow_id, run_id)).collect();
    json!({
        "session_id": session_id,
        "outputs": [{
            "inputs": { "input_value": body.input_value.clone().unwrap_or_default() },
            "outputs": outputs,
        }],
    })
}

/// One `ResultData` entry: what an output node produced.
fn result_data(output: &FlowOutput, flow_id: &str, run_id: &str) -> Json_ {
    let message = message_of(output);
    let text = message.map(|m| m.text.clone()).unwrap_or_default();
    let (sender, sender_name, session) =
        message.map(|m| (m.sender.clone(), m.sender_name.clone(), m.session_id.clone())).unwrap_or_default();
    json!({
        "results": { "message": message_json(output, flow_id, run_id, None) },
        "artifacts": { "message": text, "sender": sender, "sender_name": sender_name, "files": [], "type": "object" },
        "outputs": { "message": { "message": text, "type": "text" } },
        "logs": { "message": [] },
        "messages": [{
            "message": text,
            "sender": sender,
            "sender_name": sender_name,
            "session_id": session,
            "stream_url": null,
            "component_id": output.node_id,
            "files": [],
            "type": "text",
        }],
        "timedelta": null,
        "duration": null,
        "component_display_name": output.display_name,
        "component_id": output.node_id,
        "used_frozen_result": false,
        "token_usage": null,
    })
}

fn message_of(output: &FlowOutput) -> Option<&Message> {
    match &output.value {
        Value::Message(m) => Some(m),
        _ => None,
    }
}

/// Langflow's serialized `Message` (a `Data` whose `data` holds the fields).
/// Stream events carry the message id at the top level too.
fn message_json(output: &FlowOutput, flow_id: &str, run_id: &str, stream_id: Option<&str>) -> Json_ {
    let empty = Message {
        text: String::new(),
        sender: String::new(),
        sender_name: String::new(),
        session_id: String::new(),
        files: vec![],
        properties: String::new(),
    };
    let m = message_of(output).unwrap_or(&empty);
    let timestamp = clock::langflow_timestamp();
    let id = stream_id.map_or_else(new_id, str::to_owned);
    let source = match &output.source {
        Some((id, name)) => json!({ "id": id, "display_name": name, "source": name }),
        None => json!({ "id": null, "display_name": null, "source": null }),
    };
    let properties = json!({
        "text_color": null,
        "background_color": null,
        "edited": false,
        "source": source,
        "icon": null,
        "allow_markdown": false,
        "positive_feedback": null,
        "state": "complete",
        "targets": [],
        "usage": null,
        "build_duration": null,
    });
    let session_metadata = json!({ "graph_run_id": run_id });
    let mut outer = json!({
        "text_key": "text",
        "data": {
            "timestamp": timestamp,
            "sender": m.sender,
            "sender_name": m.sender_name,
            "session_id": m.session_id,
            "context_id": "",
            "text": m.text,
            "files": m.files,
            "error": false,
            "edit": false,
            "properties": properties,
            "category": "message",
            "content_blocks": [],
            "session_metadata": session_metadata,
            "id": id,
            "flow_id": flow_id,
            "run_id": run_id,
            "duration": null,
        },
        "default_value": "",
        "sender": m.sender,
        "sender_name": m.sender_name,
        "files": m.files,
        "session_id": m.session_id,
        "context_id": "",
        "run_id": run_id,
        "timestamp": timestamp,
        "flow_id": flow_id,
        "error": false,
        "edit": false,
        "properties": properties,
        "category": "message",
        "content_blocks": [],
        "duration": null,
        "session_metadata": session_metadata,
        "text": m.text,
    });
    if stream_id.is_some() {
        outer["id"] = json!(id);
    }
    outer
}
