//! The Langflow-compatible run API: `POST /api/v1/run/{flow_id_or_endpoint_name}`
//! with Langflow's request, response and `?stream=true` event stream, and
//! `x-api-key` auth, so existing Langflow clients and embeds work unchanged.

use super::body::{JsonBody, null_as_default};
use super::error::ApiError;
use super::progress::Step;
use super::{ApiKey, DataPlane, Execution, clock, session_or};
use crate::{FlowOutput, InputType, RunEvent, RunOutcome, RunRequest, Value};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

/// Langflow's run request body. Unknown fields are ignored, and any field
/// may be absent or `null`, as with Langflow.
#[derive(Debug, Deserialize)]
pub struct RunBody {
    /// Streams too when `true`. Langflow reads only `?stream=` and
    /// ignores this field, but its own client (`langflow-sdk`'s `stream()`)
    /// asks here, and gets a stream; any other value is ignored.
    stream: Option<Json_>,
    input_value: Option<String>,
    /// `chat` when absent.
    input_type: Option<String>,
    /// `chat` when absent.
    output_type: Option<String>,
    output_component: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tweaks: serde_json::Map<String, Json_>,
    session_id: Option<String>,
}

impl RunBody {
    fn output_type(&self) -> &str {
        self.output_type.as_deref().unwrap_or("chat")
    }

    fn asks_to_stream(&self) -> bool {
        self.stream == Some(Json_::Bool(true))
    }
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    #[serde(default, deserialize_with = "python_bool")]
    stream: bool,
}

/// A query flag as FastAPI reads one: `true`/`false`, and Python's `True`,
/// `1`, `yes`, `on` and their opposites, in any case.
fn python_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(serde::de::Error::custom(format!("`{text}` is not a boolean: use true or false"))),
    }
}

/// `POST /api/v1/run/{flow}`.
pub async fn run(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
    query: Result<Query<RunQuery>, QueryRejection>,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("the query is not valid: {}", e.body_text())))?;
    let input_type = match body.input_type.as_deref().unwrap_or("chat") {
        "chat" => InputType::Chat,
        "text" => InputType::Text,
        "any" => InputType::Any,
        other => return Err(ApiError::BadRequest(format!("input_type `{other}` is not one of chat, text, any"))),
    };
    if !matches!(body.output_type(), "chat" | "text" | "any" | "debug") {
        return Err(ApiError::BadRequest(format!(
            "output_type `{}` is not one of chat, text, any, debug",
            body.output_type()
        )));
    }
    let agent = state.agent_for(&key, &flow)?;
    // Without a session, Langflow uses the flow id, which every such caller
    // shares; a public (widget) caller gets a session of its own instead.
    let session_id = session_or(body.session_id.clone(), || {
        if key.can_run() { agent.flow_id.clone() } else { uuid::Uuid::new_v4().to_string() }
    });
    let request = RunRequest {
        input_value: body.input_value.clone(),
        input_type,
        session_id: session_id.clone(),
        tweaks: body.tweaks.clone(),
    };
    if !(query.stream || body.asks_to_stream()) {
        let Execution { outcome, run_id } = state.execute(&key, &agent, request).await?;
        return Ok(Json(response_json(&body, &outcome, &session_id, &agent.flow_id, &run_id, &[])).into_response());
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
                push_event(&mut out, "add_message", message_json(&input, &flow_id, &run_id, new_id().into(), true));
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
                                message_json(input, &flow_id, &run_id, new_id().into(), true),
                            );
                        }
                    }
                    // The end repeats each answer under the id it was sent with.
                    let mut sent = Vec::new();
                    for output in selected(&body, &outcome) {
                        let id = output.source.as_ref().and_then(|(node, _)| message_ids.get(node)).cloned();
                        let id: Rc<str> = id.unwrap_or_else(new_id).into();
                        push_event(&mut out, "add_message", message_json(output, &flow_id, &run_id, id.clone(), true));
                        sent.push(id);
                    }
                    let response = response_json(&body, &outcome, &session_id, &flow_id, &run_id, &sent);
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

/// One stream event: `{"event": …, "data": …}` and a blank line.
fn push_event(out: &mut String, event: &str, data: impl Serialize) {
    #[derive(Serialize)]
    struct Event<'a, T> {
        event: &'a str,
        data: T,
    }
    out.push_str(&serde_json::to_string(&Event { event, data }).expect("event serializes"));
    out.push_str("\n\n");
}

/// The outputs the caller asked for, as Langflow picks them: an output
/// vertex whose id contains `output_type` (`chat`, `text`; `any` and `debug`
/// take all), narrowed to `output_component` when given.
fn selected<'a>(body: &'a RunBody, outcome: &'a RunOutcome) -> impl Iterator<Item = &'a FlowOutput> + 'a {
    let kind = body.output_type().to_ascii_lowercase();
    outcome.outputs.iter().filter(move |o| {
        let by_type = matches!(kind.as_str(), "any" | "debug") || o.node_id.to_ascii_lowercase().contains(&kind);
        let by_component =
            body.output_component.as_deref().is_none_or(|c| c.is_empty() || c == o.node_id || c == o.display_name);
        by_type && by_component
    })
}

/// Langflow's `RunResponse`. Its messages take the ids in `sent` (those a
/// stream already sent them with), in order, and fresh ids past them.
pub fn response_json<'a>(
    body: &'a RunBody,
    outcome: &'a RunOutcome,
    session_id: &'a str,
    flow_id: &'a str,
    run_id: &'a str,
    sent: &[Rc<str>],
) -> RunResponse<'a> {
    let mut ids = sent.iter().cloned();
    RunResponse {
        session_id,
        outputs: [RunOutputs {
            inputs: Inputs { input_value: body.input_value.as_deref().unwrap_or_default() },
            outputs: selected(body, outcome)
                .map(|o| result_data(o, flow_id, run_id, ids.next().unwrap_or_else(|| new_id().into())))
                .collect(),
        }],
    }
}

// The response is serialized from these borrowed views, in Langflow's key
// order, rather than built as a `serde_json::Value` of some eighty map
// entries per answer: on the hot path that building cost more than the run.

/// `[]` in JSON: a field Langflow always sends empty.
type Empty = [(); 0];

/// Langflow's `RunResponse`.
#[derive(Serialize)]
pub struct RunResponse<'a> {
    session_id: &'a str,
    outputs: [RunOutputs<'a>; 1],
}

#[derive(Serialize)]
struct RunOutputs<'a> {
    inputs: Inputs<'a>,
    outputs: Vec<ResultData<'a>>,
}

#[derive(Serialize)]
struct Inputs<'a> {
    input_value: &'a str,
}

/// One `ResultData` entry: what an output node produced.
#[derive(Serialize)]
struct ResultData<'a> {
    results: Results<'a>,
    artifacts: Artifacts<'a>,
    outputs: Outputs<'a>,
    logs: Logs,
    messages: [ChatMessage<'a>; 1],
    timedelta: Option<()>,
    duration: Option<()>,
    component_display_name: &'a str,
    component_id: &'a str,
    used_frozen_result: bool,
    token_usage: Option<()>,
}

#[derive(Serialize)]
struct Results<'a> {
    message: MessageJson<'a>,
}

#[derive(Serialize)]
struct Artifacts<'a> {
    message: &'a str,
    sender: &'a str,
    sender_name: &'a str,
    files: Empty,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Outputs<'a> {
    message: TypedText<'a>,
}

#[derive(Serialize)]
struct TypedText<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Logs {
    message: Empty,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    message: &'a str,
    sender: &'a str,
    sender_name: &'a str,
    session_id: &'a str,
    stream_url: Option<()>,
    component_id: &'a str,
    files: Empty,
    #[serde(rename = "type")]
    kind: &'static str,
}

fn result_data<'a>(output: &'a FlowOutput, flow_id: &'a str, run_id: &'a str, id: Rc<str>) -> ResultData<'a> {
    let message = message_json(output, flow_id, run_id, id, false);
    let (text, sender, sender_name, session_id) =
        (message.text, message.sender, message.sender_name, message.session_id);
    ResultData {
        results: Results { message },
        artifacts: Artifacts { message: text, sender, sender_name, files: [], kind: "object" },
        outputs: Outputs { message: TypedText { message: text, kind: "text" } },
        logs: Logs { message: [] },
        messages: [ChatMessage {
            message: text,
            sender,
            sender_name,
            session_id,
            stream_url: None,
            component_id: &output.node_id,
            files: [],
            kind: "text",
        }],
        timedelta: None,
        duration: None,
        component_display_name: &output.display_name,
        component_id: &output.node_id,
        used_frozen_result: false,
        token_usage: None,
    }
}

/// Langflow's serialized `Message`: a `Data` whose `data` holds the
/// fields, most of them repeated at the top. A stream event's message
/// carries its id at the top too.
#[derive(Serialize)]
struct MessageJson<'a> {
    text_key: &'static str,
    data: MessageData<'a>,
    default_value: &'static str,
    sender: &'a str,
    sender_name: &'a str,
    files: &'a [String],
    session_id: &'a str,
    context_id: &'static str,
    run_id: &'a str,
    timestamp: Rc<str>,
    flow_id: &'a str,
    error: bool,
    edit: bool,
    properties: Properties<'a>,
    category: &'static str,
    content_blocks: Empty,
    duration: Option<()>,
    session_metadata: SessionMetadata<'a>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Rc<str>>,
}

#[derive(Serialize)]
struct MessageData<'a> {
    timestamp: Rc<str>,
    sender: &'a str,
    sender_name: &'a str,
    session_id: &'a str,
    context_id: &'static str,
    text: &'a str,
    files: &'a [String],
    error: bool,
    edit: bool,
    properties: Properties<'a>,
    category: &'static str,
    content_blocks: Empty,
    session_metadata: SessionMetadata<'a>,
    id: Rc<str>,
    flow_id: &'a str,
    run_id: &'a str,
    duration: Option<()>,
}

#[derive(Serialize, Clone, Copy)]
struct Properties<'a> {
    text_color: Option<()>,
    background_color: Option<()>,
    edited: bool,
    source: Source<'a>,
    icon: Option<()>,
    allow_markdown: bool,
    positive_feedback: Option<()>,
    state: &'static str,
    targets: Empty,
    usage: Option<()>,
    build_duration: Option<()>,
}

/// The node that fed the output: all null when none did.
#[derive(Serialize, Clone, Copy)]
struct Source<'a> {
    id: Option<&'a str>,
    display_name: Option<&'a str>,
    source: Option<&'a str>,
}

#[derive(Serialize, Clone, Copy)]
struct SessionMetadata<'a> {
    graph_run_id: &'a str,
}

fn message_json<'a>(
    output: &'a FlowOutput,
    flow_id: &'a str,
    run_id: &'a str,
    id: Rc<str>,
    in_stream: bool,
) -> MessageJson<'a> {
    let (text, sender, sender_name, session_id, files): (&str, &str, &str, &str, &[String]) = match &output.value {
        Value::Message(m) => (&m.text, &m.sender, &m.sender_name, &m.session_id, &m.files),
        _ => ("", "", "", "", &[]),
    };
    let timestamp: Rc<str> = clock::langflow_timestamp().into();
    let source = match &output.source {
        Some((id, name)) => Source { id: Some(id), display_name: Some(name), source: Some(name) },
        None => Source { id: None, display_name: None, source: None },
    };
    let properties = Properties {
        text_color: None,
        background_color: None,
        edited: false,
        source,
        icon: None,
        allow_markdown: false,
        positive_feedback: None,
        state: "complete",
        targets: [],
        usage: None,
        build_duration: None,
    };
    let session_metadata = SessionMetadata { graph_run_id: run_id };
    MessageJson {
        text_key: "text",
        data: MessageData {
            timestamp: timestamp.clone(),
            sender,
            sender_name,
            session_id,
            context_id: "",
            text,
            files,
            error: false,
            edit: false,
            properties,
            category: "message",
            content_blocks: [],
            session_metadata,
            id: id.clone(),
            flow_id,
            run_id,
            duration: None,
        },
        default_value: "",
        sender,
        sender_name,
        files,
        session_id,
        context_id: "",
        run_id,
        timestamp,
        flow_id,
        error: false,
        edit: false,
        properties,
        category: "message",
        content_blocks: [],
        duration: None,
        session_metadata,
        text,
        id: in_stream.then_some(id),
    }
}
