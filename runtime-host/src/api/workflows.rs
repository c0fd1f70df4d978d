//! Langflow's v2 run API, `POST /api/v2/workflows`, in its `sync` mode:
//! `{flow_id, input_value, tweaks, session_id, mode, output_ids}` runs the
//! flow and answers Langflow 1.13's `WorkflowExecutionResponse`:
//! `output` (`text` and the `source` it came from when exactly one text
//! output answered, else a `reason`: `multiple`, `non_string`, `none`,
//! `failed`), `outputs` keyed by component id for every terminal component
//! (`type`, `status`, `display_name`, `content`, `metadata.component_type`),
//! `inputs` echoing the tweaks, and `errors`.
//!
//! As in Langflow, a run that fails in a component answers 200 with
//! `status: "failed"` and the error in `errors`; refusals at the door (key,
//! limits, a bad request) are HTTP errors like on every route. Unknown
//! fields are refused, as Langflow's schema forbids them. `output_ids`
//! naming no terminal component answer Langflow's 422 `UNKNOWN_OUTPUT_IDS`,
//! with the ids that are `available`, before anything runs.
//!
//! Departures, each refused with a 400 that says what to do instead:
//! `mode` `stream` and `background` (stream with
//! `/api/v1/run/{flow}?stream=true`), request `globals` (an agent's
//! variables are its secrets, set in the control plane), `data` (the flow
//! is the seller's published version), `files`, and partial runs
//! (`start_component_id`, `stop_component_id`). A terminal component that
//! is not an output node is listed with its status and type but no
//! content.

use super::body::{JsonBody, null_as_default};
use super::error::ApiError;
use super::native::text;
use super::{ApiKey, DataPlane, Execution, clock, new_run_id, session_or};
use crate::flow::RunOutcome;
use crate::{RunError, RunRequest};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandflow_flow_compiler::catalog::Role;
use sandflow_flow_compiler::ir::Plan;
use serde::Deserialize;
use serde_json::{Map, Value as Json_, json};
use std::sync::Arc;

/// The request body: Langflow's `WorkflowRunRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    flow_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    input_value: String,
    #[serde(default, deserialize_with = "null_as_default")]
    tweaks: Map<String, Json_>,
    session_id: Option<String>,
    mode: Option<String>,
    /// Read by streams and background runs only, which this route does
    /// not serve (Langflow ignores them in `sync` mode too).
    #[serde(rename = "stream_protocol")]
    _stream_protocol: Option<String>,
    #[serde(rename = "expose_graph_state")]
    _expose_graph_state: Option<bool>,
    #[serde(rename = "idempotency_key")]
    _idempotency_key: Option<String>,
    output_ids: Option<Vec<String>>,
    #[serde(default)]
    globals: Option<Map<String, Json_>>,
    #[serde(default)]
    data: Option<Json_>,
    #[serde(default)]
    files: Option<Vec<Json_>>,
    start_component_id: Option<String>,
    stop_component_id: Option<String>,
}

impl WorkflowBody {
    /// Refuses what this route does not do, saying what to use instead.
    fn check(&self) -> Result<(), ApiError> {
        match self.mode.as_deref().unwrap_or("sync") {
            "sync" => {}
            "stream" | "background" => {
                return Err(ApiError::BadRequest(format!(
                    "mode `{}` is not served here; use mode `sync`, or stream with POST \
                     /api/v1/run/{{flow}}?stream=true",
                    self.mode.as_deref().unwrap_or_default()
                )));
            }
            other => {
                return Err(ApiError::BadRequest(format!("mode `{other}` is not one of sync, stream, background")));
            }
        }
        if self.globals.as_ref().is_some_and(|g| !g.is_empty()) {
            return Err(ApiError::BadRequest(
                "request `globals` are not taken: an agent's global variables are its secrets, which its buyer or \
                 seller sets in the control plane"
                    .into(),
            ));
        }
        if self.data.as_ref().is_some_and(|d| !d.is_null()) {
            return Err(ApiError::BadRequest(
                "`data` cannot replace the flow: an agent runs its seller's published version".into(),
            ));
        }
        if self.files.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(ApiError::BadRequest(
                "`files` is not taken: upload with POST /api/v1/files/upload/{flow} and pass the path in a tweak"
                    .into(),
            ));
        }
        if self.start_component_id.is_some() || self.stop_component_id.is_some() {
            return Err(ApiError::BadRequest(
                "partial runs (`start_component_id`, `stop_component_id`) are not served: the whole flow runs".into(),
            ));
        }
        Ok(())
    }
}

/// `POST /api/v2/workflows`.
pub async fn run(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    JsonBody(body): JsonBody<WorkflowBody>,
) -> Result<Response, ApiError> {
    body.check()?;
    let agent = state.agent_for(&key, &body.flow_id)?;
    let plan = agent.flow.plan();
    let terminals = terminal_nodes(plan);
    let unknown: Vec<&String> =
        body.output_ids.iter().flatten().filter(|id| !terminals.iter().any(|&i| plan.nodes[i].id == **id)).collect();
    if !unknown.is_empty() {
        // Langflow's answer, naming the outputs there are.
        let available: Vec<&str> = terminals.iter().map(|&i| plan.nodes[i].id.as_str()).collect();
        let detail = json!({
            "error": "Unknown output_ids",
            "code": "UNKNOWN_OUTPUT_IDS",
            "message": format!("output_ids not produced by this flow: {unknown:?}; choose among: {}", available.join(", ")),
            "available": available,
        });
        let body = json!({ "detail": detail, "code": "unknown_output_ids" });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    }
    let session_id = session_or(body.session_id.clone(), || uuid::Uuid::new_v4().to_string());
    let request = RunRequest {
        input_value: Some(body.input_value.clone()),
        session_id: session_id.clone(),
        tweaks: body.tweaks.clone(),
        ..RunRequest::default()
    };
    let response = |status: &str| {
        json!({
            "flow_id": agent.flow_id,
            "session_id": session_id,
            "object": "response",
            "created_timestamp": clock::iso_timestamp(),
            "status": status,
            "warnings": [],
            "inputs": body.tweaks,
            "globals": {},
            "human_request": null,
        })
    };
    let run_id = new_run_id();
    match state.execute_as(&key, &agent, request, run_id.clone()).await {
        Ok(Execution { outcome, .. }) => {
            let outputs = component_outputs(plan, &terminals, &outcome);
            let mut answer = response("completed");
            answer["job_id"] = json!(run_id);
            answer["output"] = resolve_output(&outputs, body.output_ids.as_deref());
            answer["errors"] = json!([]);
            answer["has_errors"] = json!(false);
            answer["outputs"] = Json_::Object(outputs);
            Ok(Json(answer).into_response())
        }
        Err(ApiError::Run(error)) if failed_in_the_flow(&error) => {
            let mut answer = response("failed");
            answer["job_id"] = json!(run_id);
            answer["output"] = json!({ "reason": "failed", "text": null, "source": null });
            answer["errors"] = json!([{
                "error": error.to_string(),
                "code": "EXECUTION_ERROR",
                "details": { "flow_id": agent.flow_id, "error_type": error_type(&error) },
            }]);
            answer["has_errors"] = json!(true);
            answer["outputs"] = json!({});
            Ok(Json(answer).into_response())
        }
        Err(refused) => Err(refused),
    }
}

/// Errors of the run itself, which Langflow answers in the body.
fn failed_in_the_flow(error: &RunError) -> bool {
    matches!(
        error,
        RunError::Node { .. } | RunError::Trap(_) | RunError::OutOfFuel(_) | RunError::Deadline(_) | RunError::Limit(_)
    )
}

fn error_type(error: &RunError) -> &'static str {
    match error {
        RunError::Node { .. } => "ComponentError",
        RunError::Trap(_) => "Trap",
        RunError::OutOfFuel(_) => "OutOfFuel",
        RunError::Deadline(_) => "Deadline",
        RunError::Limit(_) => "Limit",
        _ => "Error",
    }
}

/// Components no edge leaves (Langflow's terminal vertices; a loop body's
/// feedback edge counts, as in Langflow's successor map), in plan order;
/// tools, which agents call, are not among them.
fn terminal_nodes(plan: &Plan) -> Vec<usize> {
    (0..plan.nodes.len()).filter(|&i| !plan.nodes[i].tool && !plan.edges.iter().any(|e| e.from as usize == i)).collect()
}

/// Each terminal component's output, keyed by its id.
fn component_outputs(plan: &Plan, terminals: &[usize], outcome: &RunOutcome) -> Map<String, Json_> {
    terminals
        .iter()
        .map(|&i| {
            let node = &plan.nodes[i];
            let is_output = matches!(node.role, Role::ChatOutput | Role::TextOutput);
            let kind = node
                .outputs
                .first()
                .and_then(|port| port.types.first())
                .map_or_else(|| node.component.to_lowercase(), |t| t.to_lowercase());
            // A component on a branch not taken answers no content, and
            // is not failed: a failure fails the run (Langflow's rule).
            let produced = outcome.outputs.iter().find(|o| o.node_id == node.id);
            let content = if is_output { produced.map(|o| json!(text(&o.value))) } else { None };
            let output = json!({
                "type": kind,
                "status": "completed",
                "display_name": node.display_name,
                "content": content,
                "metadata": { "component_type": node.component },
            });
            (node.id.clone(), output)
        })
        .collect()
}

/// Langflow's `output`: the one text answer, or why there is none.
fn resolve_output(outputs: &Map<String, Json_>, selected: Option<&[String]>) -> Json_ {
    let considered = outputs.iter().filter(|(id, _)| selected.is_none_or(|s| s.is_empty() || s.contains(id)));
    let channels: Vec<(&String, &Json_)> =
        considered.filter(|(_, o)| matches!(o["type"].as_str(), Some("message" | "text"))).collect();
    let texts: Vec<(&String, &str)> =
        channels.iter().filter_map(|(id, o)| o["content"].as_str().map(|t| (*id, t))).collect();
    match (texts.as_slice(), channels.is_empty()) {
        ([(source, text)], _) => json!({ "reason": "single", "text": text, "source": source }),
        ([_, _, ..], _) => json!({ "reason": "multiple", "text": null, "source": null }),
        ([], false) => json!({ "reason": "non_string", "text": null, "source": null }),
        ([], true) => json!({ "reason": "none", "text": null, "source": null }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(kind: &str, content: Json_) -> Json_ {
        json!({ "type": kind, "status": "completed", "content": content })
    }

    fn outputs(entries: &[(&str, Json_)]) -> Map<String, Json_> {
        entries.iter().map(|(id, o)| ((*id).to_owned(), o.clone())).collect()
    }

    #[test]
    fn the_answer_is_the_one_text_output_or_why_there_is_none() {
        let two = outputs(&[
            ("ChatOutput-a", output("message", json!("A"))),
            ("ChatOutput-b", output("message", json!("B"))),
        ]);
        assert_eq!(resolve_output(&two, None), json!({"reason": "multiple", "text": null, "source": null}));
        let picked = ["ChatOutput-b".to_owned()];
        assert_eq!(
            resolve_output(&two, Some(&picked)),
            json!({"reason": "single", "text": "B", "source": "ChatOutput-b"})
        );
        assert_eq!(resolve_output(&two, Some(&[])), resolve_output(&two, None), "an empty selection is none");
        let silent =
            outputs(&[("ChatOutput-a", output("message", Json_::Null)), ("Parser-c", output("data", json!({})))]);
        assert_eq!(resolve_output(&silent, None)["reason"], "non_string");
        let data = outputs(&[("Parser-c", output("data", json!({"x": 1})))]);
        assert_eq!(resolve_output(&data, None)["reason"], "none");
        let empty = outputs(&[("TextOutput-t", output("text", json!("")))]);
        assert_eq!(resolve_output(&empty, None), json!({"reason": "single", "text": "", "source": "TextOutput-t"}));
    }
}
