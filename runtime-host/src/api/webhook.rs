//! Langflow's webhook trigger, `POST /api/v1/webhook/{flow_id_or_endpoint_name}`:
//! the raw body becomes the `data` of every Webhook component of the flow
//! (as Langflow passes it, through tweaks), the run goes on in the
//! background, and the caller hears 202 at once. Refusals (the key, which
//! needs the `run` scope, not only `widget`; rate limits, quota, an empty
//! or non-text body, a flow without a Webhook) come first, with the usual
//! error body.

use super::error::ApiError;
use super::{ApiKey, DataPlane};
use crate::RunRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandflow_flow_compiler::catalog::Role;
use serde_json::json;
use std::sync::Arc;

/// `POST /api/v1/webhook/{flow}`.
pub async fn trigger(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(super::body::unreadable)?;
    let agent = state.agent_for(&key, &flow)?;
    // A widget key is public: it must not post payloads the flow trusts.
    key.require_run("triggering a webhook")?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the webhook body is empty: post the payload the flow's Webhook component should receive".into(),
        ));
    }
    let payload = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the webhook body is not UTF-8 text: post JSON or other text".into()))?;
    let webhooks: serde_json::Map<String, serde_json::Value> = agent
        .flow
        .plan()
        .nodes
        .iter()
        .filter(|node| node.role == Role::Webhook)
        .map(|node| (node.id.clone(), json!({ "data": payload })))
        .collect();
    if webhooks.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "flow `{flow}` has no Webhook component to receive the payload; add one in Langflow"
        )));
    }
    // Without a session, Langflow uses the flow id.
    let request = RunRequest { session_id: agent.flow_id.clone(), tweaks: webhooks, ..RunRequest::default() };
    state.execute_detached(key, agent, request)?;
    let accepted = json!({ "message": "Task started in the background", "status": "in progress" });
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
