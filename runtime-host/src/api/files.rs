//! Langflow's file upload: `POST /api/v1/files/upload/{flow_id}` with a
//! multipart `file` field and `x-api-key`, answering 201
//! `{"flowId": …, "file_path": "<flow_id>/<timestamp>_<name>"}` as Langflow
//! 1.13 does. The client then passes `file_path` in the Chat Input's
//! `files` or in a File node's `path` tweak, and the run reads it through
//! the `files` capability.
//!
//! The file lands in the storage of the key's tenant and of the agent the
//! flow names (the same door as runs: [`DataPlane::agent_for`]), so it is
//! readable only by that agent's runs. Uploads need the `run` scope
//! (widget keys, which sit in web pages, cannot fill a tenant's storage),
//! pass the key's and tenant's rate limits, and are refused over the
//! per-file cap (413) or the tenant's storage cap (413).

use super::error::ApiError;
use super::{ApiKey, DataPlane, clock};
use crate::capabilities::files::{FilesError, FilesScope, names, store};
use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// Room for the multipart framing around the file itself.
pub(super) const FRAMING_BYTES: usize = 64 << 10;

/// `POST /api/v1/files/upload/{flow}`.
pub async fn upload(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let agent = state.agent_for(&key, &flow)?;
    key.require_run("uploading files")?;
    let Some(store) = state.runtime.capabilities().files.clone() else {
        return Err(ApiError::Unavailable(
            "file uploads are not configured on this host; the operator sets --files-dir".into(),
        ));
    };
    state.admit(&key)?;
    let limit = store.config().max_file_bytes;
    let not_multipart = || {
        ApiError::UnsupportedMediaType("the body must be multipart/form-data with the file in a `file` field".into())
    };
    let mut multipart = multipart.map_err(|_| not_multipart())?;
    let too_large = || ApiError::TooLarge(format!("the file is over the {limit}-byte limit per file"));
    let (filename, content) = loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Err(ApiError::BadRequest("the form has no `file` field".into())),
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(error) => return Err(ApiError::BadRequest(format!("the multipart body is malformed: {error}"))),
        };
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().map(str::to_owned);
        let mut content = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if (content.len() + chunk.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    content.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
                Err(error) => return Err(ApiError::BadRequest(format!("the multipart body is malformed: {error}"))),
            }
        }
        break (filename, content);
    };
    // Langflow's name: `<flow id>/<timestamp>_<file name>` (the content's
    // hash when the client sends no name).
    let component = filename.as_deref().and_then(names::upload_component).unwrap_or_else(|| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&content))
    });
    let folder = if names::components(&agent.flow_id).is_ok_and(|c| c.len() == 1) {
        agent.flow_id.clone()
    } else {
        store::segment(&agent.flow_id)
    };
    let name = format!("{folder}/{}_{component}", clock::file_timestamp());
    let scope = FilesScope { tenant: agent.tenant.clone(), agent: agent.id.clone() };
    let bytes = content.len();
    let stored = tokio::task::spawn_blocking(move || store.write(&scope, &name, &content))
        .await
        .map_err(|e| ApiError::Internal(format!("upload task failed: {e}")))?
        .map_err(|error| match error {
            FilesError::Invalid(m) | FilesError::NotFound(m) => ApiError::BadRequest(m),
            FilesError::TooLarge(m) => ApiError::TooLarge(m),
            FilesError::Denied(m) => ApiError::Forbidden(m),
            FilesError::Io(e) => ApiError::Internal(format!("cannot store an upload: {e}")),
        })?;
    tracing::info!(tenant = %agent.tenant, agent = %agent.id, bytes, "file uploaded");
    Ok((StatusCode::CREATED, Json(json!({ "flowId": agent.flow_id, "file_path": stored }))))
}
