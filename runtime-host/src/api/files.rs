//! Files of an agent's storage over HTTP.
//!
//! Langflow 1.13's v1 files API, on the folder uploads go to:
//! - `POST /api/v1/files/upload/{flow_id}` with a multipart `file` field
//!   answers 201 `{"flowId": …, "file_path": "<flow_id>/<timestamp>_<name>"}`.
//!   The client then passes `file_path` in the Chat Input's `files` or in a
//!   File node's `path` tweak, and the run reads it through the `files`
//!   capability;
//! - `GET /api/v1/files/list/{flow_id}` answers `{"files": [names]}`, the
//!   folder's files;
//! - `GET /api/v1/files/download/{flow_id}/{file_name}` answers the bytes
//!   as an attachment, `GET /api/v1/files/images/{flow_id}/{file_name}` an
//!   image with its type;
//! - `DELETE /api/v1/files/delete/{flow_id}/{file_name}` answers
//!   `{"message": "File <name> deleted successfully"}`, also for a file
//!   that was not there, as Langflow does.
//!
//! The native API reaches every file of the agent, the ones its flows
//! wrote included: `GET /v1/agents/{agent}/files[?prefix=…]` lists them
//! with their sizes and the tenant's use of its cap,
//! `GET /v1/agents/{agent}/files/{name}` downloads one and
//! `DELETE /v1/agents/{agent}/files/{name}` deletes one (204; 404 when
//! there is none), which gives its bytes back to the tenant's cap.
//!
//! Every call reaches the storage of the key's tenant and of the agent the
//! path names (the same door as runs: [`DataPlane::agent_for`]), so one
//! agent's files are never another's. Every call needs the `run` scope
//! (widget keys sit in web pages) and passes the key's and tenant's rate
//! limits; uploads also the tenant's monthly quota, while listing,
//! downloading and deleting do not (a tenant whose month is used up can
//! still free its storage). Uploads over the per-file cap or the tenant's
//! storage cap are refused (413). Downloads are always attachments with
//! `X-Content-Type-Options: nosniff`: a stored HTML or SVG file never
//! renders as a page of the data plane's origin. They are streamed from
//! the file as it was when the download began, 64 KiB at a time, so a
//! download holds a chunk in memory, not the file, and a write or a
//! deletion meanwhile does not change what it sends.

use super::agents::Agent;
use super::error::ApiError;
use super::{ApiKey, DataPlane, clock};
use crate::capabilities::files::{FileStore, FilesError, FilesScope, OpenedFile, names, store};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Room for the multipart framing around the file itself.
pub(super) const FRAMING_BYTES: usize = 64 << 10;

/// `POST /api/v1/files/upload/{flow}`.
pub async fn upload(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &flow, "uploading files", Charge::Quota)?;
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
    let name = format!("{}/{}_{component}", folder(&agent), clock::file_timestamp());
    let bytes = content.len();
    let stored = blocking(move || store.write(&scope, &name, &content)).await?;
    tracing::info!(tenant = %agent.tenant, agent = %agent.id, bytes, "file uploaded");
    Ok((StatusCode::CREATED, Json(json!({ "flowId": agent.flow_id, "file_path": stored }))))
}

/// `GET /api/v1/files/list/{flow}`: the names in the flow's folder.
pub async fn list(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(flow): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &flow, "listing files", Charge::RateOnly)?;
    let prefix = format!("{}/", folder(&agent));
    let files = blocking(move || {
        let files = store.files(&scope, &prefix)?;
        Ok(files.into_iter().filter_map(|f| f.name.strip_prefix(&prefix).map(str::to_owned)).collect::<Vec<_>>())
    })
    .await?;
    // Langflow lists the folder's own files, not those of folders in it.
    let files: Vec<String> = files.into_iter().filter(|name| !name.contains('/')).collect();
    Ok(Json(json!({ "files": files })))
}

/// `GET /api/v1/files/download/{flow}/{file_name}`.
pub async fn download(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path((flow, file_name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &flow, "downloading files", Charge::RateOnly)?;
    let name = in_folder(&agent, &file_name)?;
    let file = blocking(move || store.open_read(&scope, &name)).await?;
    Ok(attachment(&file_name, file, "application/octet-stream"))
}

/// `GET /api/v1/files/images/{flow}/{file_name}`: an image, with its type.
pub async fn image(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path((flow, file_name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &flow, "downloading files", Charge::RateOnly)?;
    let name = in_folder(&agent, &file_name)?;
    let content_type = store::content_type(&name);
    if !content_type.starts_with("image/") {
        return Err(ApiError::BadRequest(format!(
            "`{file_name}` is not an image (its type is {content_type}); download it from \
             /api/v1/files/download/{flow}/{file_name}"
        )));
    }
    let file = blocking(move || store.open_read(&scope, &name)).await?;
    Ok(attachment(&file_name, file, content_type))
}

/// `DELETE /api/v1/files/delete/{flow}/{file_name}`.
pub async fn delete(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path((flow, file_name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &flow, "deleting files", Charge::RateOnly)?;
    let name = in_folder(&agent, &file_name)?;
    let deleted = blocking(move || store.delete(&scope, &name)).await?;
    tracing::info!(tenant = %agent.tenant, agent = %agent.id, deleted, "file deleted");
    Ok(Json(json!({ "message": format!("File {file_name} deleted successfully") })))
}

/// `?prefix=` of the native listing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
}

/// `GET /v1/agents/{agent}/files`: every file of the agent, with sizes.
pub async fn agent_files(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path(agent): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("the query is not valid: {}", e.body_text())))?;
    let Storage { agent, store, scope } = open(&state, &key, &agent, "listing files", Charge::RateOnly)?;
    let max_tenant_bytes = store.config().max_tenant_bytes;
    let (files, usage) =
        blocking(move || Ok((store.files(&scope, &query.prefix)?, store.tenant_usage(&scope.tenant)?))).await?;
    let files: Vec<_> = files.iter().map(|f| json!({ "name": f.name, "bytes": f.bytes })).collect();
    Ok(Json(json!({
        "agent": agent.id,
        "files": files,
        "tenant_bytes": usage.bytes,
        "max_tenant_bytes": max_tenant_bytes,
    })))
}

/// `GET /v1/agents/{agent}/files/{name}`.
pub async fn agent_file(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path((agent, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Storage { store, scope, .. } = open(&state, &key, &agent, "downloading files", Charge::RateOnly)?;
    let shown = name.rsplit('/').next().unwrap_or_default().to_owned();
    let file = blocking(move || store.open_read(&scope, &name)).await?;
    Ok(attachment(&shown, file, "application/octet-stream"))
}

/// `DELETE /v1/agents/{agent}/files/{name}`.
pub async fn delete_agent_file(
    State(state): State<Arc<DataPlane>>,
    key: ApiKey,
    Path((agent, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let Storage { agent, store, scope } = open(&state, &key, &agent, "deleting files", Charge::RateOnly)?;
    let missing = format!("there is no file `{}` in this agent's storage", names::shown(&name));
    if !blocking(move || store.delete(&scope, &name)).await? {
        return Err(ApiError::NotFound(missing));
    }
    tracing::info!(tenant = %agent.tenant, agent = %agent.id, "file deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The agent a call names and its storage.
struct Storage {
    agent: Arc<Agent>,
    store: FileStore,
    scope: FilesScope,
}

/// What a files call is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Charge {
    /// Rate limits and the tenant's monthly quota (uploads).
    Quota,
    /// Rate limits only: a tenant whose month is used up may still see and
    /// free its storage.
    RateOnly,
}

/// The storage of the agent `reference` names, for a key with the `run`
/// scope, once the key's and tenant's rate limits (and with
/// [`Charge::Quota`] the quota) let the call in.
fn open(state: &DataPlane, key: &ApiKey, reference: &str, what: &str, charge: Charge) -> Result<Storage, ApiError> {
    let agent = state.agent_for(key, reference)?;
    key.require_run(what)?;
    let Some(store) = state.runtime.capabilities().files.clone() else {
        return Err(ApiError::Unavailable(
            "file storage is not configured on this host; the operator sets --files-dir".into(),
        ));
    };
    state.limit_rate(key)?;
    if charge == Charge::Quota {
        state.check_quota(key)?;
    }
    let scope = FilesScope { tenant: agent.tenant.clone(), agent: agent.id.clone() };
    Ok(Storage { agent, store, scope })
}

/// The folder Langflow's routes keep the agent's uploads in: its flow id.
fn folder(agent: &Agent) -> String {
    if names::components(&agent.flow_id).is_ok_and(|c| c.len() == 1) {
        agent.flow_id.clone()
    } else {
        store::segment(&agent.flow_id)
    }
}

/// `file_name` of the flow's folder: one name, no folders.
fn in_folder(agent: &Agent, file_name: &str) -> Result<String, ApiError> {
    let parts = names::components(file_name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if parts.len() != 1 {
        return Err(ApiError::BadRequest(format!(
            "`{}` names a folder; Langflow's file routes take a file of the flow's own folder",
            names::shown(file_name)
        )));
    }
    Ok(format!("{}/{file_name}", folder(agent)))
}

/// Runs a store call off the async threads, its refusals as API errors.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ApiError::Internal(format!("file store task failed: {e}")))?
        .map_err(|error| match error {
            FilesError::Invalid(m) => ApiError::BadRequest(m),
            FilesError::NotFound(m) => ApiError::NotFound(m),
            FilesError::TooLarge(m) => ApiError::TooLarge(m),
            FilesError::Denied(m) => ApiError::Forbidden(m),
            FilesError::Io(e) => ApiError::Internal(format!("the file store failed: {e}")),
        })
}

/// `file` as a download named `shown`: never rendered in the browser.
fn attachment(shown: &str, file: OpenedFile, content_type: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_LENGTH, HeaderValue::from(file.bytes)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_DISPOSITION, content_disposition(shown)),
    ];
    (headers, streamed(file)).into_response()
}

/// Bytes a download reads from its file at a time.
const DOWNLOAD_CHUNK: u64 = 64 << 10;

/// `file`'s bytes as they are read, [`DOWNLOAD_CHUNK`] at a time: a
/// download holds one chunk in memory, not the file. It ends after the
/// length the file had when it was opened (the `Content-Length`), and
/// with an error (the connection is cut, not the answer left short) if
/// the file turns out shorter.
fn streamed(opened: OpenedFile) -> Body {
    let file = tokio::fs::File::from_std(opened.file);
    let chunks = futures_util::stream::try_unfold((file, opened.bytes), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut chunk = vec![0; left.min(DOWNLOAD_CHUNK) as usize];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file was cut short"));
        }
        chunk.truncate(read);
        Ok::<_, std::io::Error>(Some((Bytes::from(chunk), (file, left - read as u64))))
    });
    Body::from_stream(chunks)
}

/// `attachment` with the name as an ASCII fallback and percent-encoded
/// UTF-8 (RFC 6266 and 5987), as Langflow answers.
fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downloads_name_cannot_break_its_header() {
        let value = content_disposition("r\u{e9}sum\u{e9} \"1\"\r\nSet-Cookie: x.txt");
        let value = value.to_str().expect("ASCII");
        assert_eq!(
            value,
            "attachment; filename=\"r_sum_ _1___Set-Cookie: x.txt\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22%0D%0ASet-Cookie%3A%20x.txt"
        );
    }
}
