//! `/api/training-documents/`: the documents a buyer gives their agent to
//! retrieve ([`crate::documents`]). Members of the buyer organisation list
//! and read them; owners and admins upload, re-process and delete.
//! Everyone else gets a 404, as for any resource that is not theirs.
//!
//! Upload: `multipart/form-data` with `file` (PDF, DOCX, Markdown, plain
//! text or HTML, by its content type or, for a generic one, its extension),
//! `config_id` (the customer agent config it belongs to) and optionally
//! `collection` (the knowledge base name flows search; empty: the agent's
//! default, which a flow's empty knowledge base searches). Over
//! `--max-document-bytes` is a 413, another type a 415; the bytes are kept
//! in the database and a durable job processes them.

use super::agent_configs;
use super::organizations::authorize;
use super::paging::{Listing, Page, PageParams};
use super::{OptionalJsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::{new_id, now_ms};
use crate::documents::extract::{self, Kind};
use crate::documents::{self, PROCESS};
use crate::error::{Error, Result};
use crate::jobs;
use axum::Json;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    // The upload bounds its own body (`--max-document-bytes`), field by field.
    let upload = OpenApiRouter::new().routes(routes!(upload)).layer(DefaultBodyLimit::disable());
    super::tagged(
        "training-documents",
        OpenApiRouter::new()
            .routes(routes!(list))
            .merge(upload)
            .routes(routes!(show, remove))
            .routes(routes!(reprocess)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// Longest file name kept, in characters.
const MAX_FILENAME_CHARS: usize = 255;
/// Longest text field of the form (ids, collection), in bytes.
const MAX_FORM_FIELD_BYTES: usize = 1024;

/// A training document as the API shows it (never its bytes).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentOut {
    /// Document id (also its document id in the index).
    pub id: String,
    /// The buyer organisation (the index tenant).
    pub organization_id: String,
    /// The customer agent config it belongs to.
    pub config_id: String,
    /// The resource (subscription), which is the runtime's agent id (the index agent).
    pub resource_id: String,
    /// The index collection (knowledge base) it goes to; empty is the default.
    pub collection: String,
    /// File name as uploaded.
    pub filename: String,
    /// `pdf`, `docx`, `markdown`, `text` or `html`.
    pub kind: String,
    /// Content type.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// `uploaded`, `processing`, `ready` or `failed`.
    pub status: String,
    /// Why processing failed.
    pub error: Option<String>,
    /// Chunks in the index.
    pub chunk_count: i64,
    /// Uploaded by.
    pub created_by: String,
    /// Last processed.
    pub processed_at_ms: Option<i64>,
    /// Uploaded.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

const COLUMNS: &str = "id, organization_id, config_id, resource_id, collection, filename, kind, content_type, \
     size_bytes, sha256, status, error, chunk_count, created_by, processed_at, created_at, updated_at";

fn document_out(row: &AnyRow) -> Result<DocumentOut> {
    Ok(DocumentOut {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        config_id: row.try_get("config_id")?,
        resource_id: row.try_get("resource_id")?,
        collection: row.try_get("collection")?,
        filename: row.try_get("filename")?,
        kind: row.try_get("kind")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        chunk_count: row.try_get("chunk_count")?,
        created_by: row.try_get("created_by")?,
        processed_at_ms: row.try_get("processed_at")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// Loads a document of one of the caller's organisations (404 otherwise);
/// `manage` asks for owner or admin (403 otherwise).
async fn load(state: &AppState, user: &CurrentUser, id: &str, manage: bool) -> Result<DocumentOut> {
    let not_found = || Error::NotFound(format!("no training document `{id}` among yours"));
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM training_document WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(not_found)?;
    let document = document_out(&row)?;
    authorize(state, user, &document.organization_id, manage).await.map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        other => other,
    })?;
    Ok(document)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only the documents of this customer agent config.
    config_id: Option<String>,
    /// `uploaded`, `processing`, `ready` or `failed`.
    status: Option<String>,
}

/// The training documents of the caller's organisations, newest first.
#[utoipa::path(
    get,
    path = "/api/training-documents",
    params(ListQuery, PageParams),
    responses((status = 200, description = "The documents.", body = Vec<DocumentOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Listing { filters: query, paging }: Listing<ListQuery>,
) -> Result<Page<DocumentOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {COLUMNS} FROM training_document \
         WHERE organization_id IN (SELECT organization_id FROM membership WHERE user_id = $1) \
         AND ($2 = '' OR config_id = $2) AND ($3 = '' OR status = $3) ORDER BY created_at DESC, id DESC"
    )))
    .bind(&user.id)
    .bind(query.config_id.unwrap_or_default())
    .bind(query.status.unwrap_or_default())
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(document_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One training document (members of its organisation).
#[utoipa::path(
    get,
    path = "/api/training-documents/{id}",
    params(("id" = String, Path, description = "Document id.")),
    responses((status = 200, description = "The document.", body = DocumentOut)),
)]
async fn show(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<DocumentOut>> {
    load(&state, &user, &id, false).await.map(Json)
}

/// The file part of an upload.
struct Upload {
    filename: String,
    kind: Kind,
    bytes: Vec<u8>,
}

fn multipart_error(error: impl std::fmt::Display) -> Error {
    Error::MalformedBody(format!("the multipart body could not be read: {error}"))
}

/// Reads a field's bytes, refusing more than `limit` with `too_large`.
async fn read_field(mut field: Field<'_>, limit: usize, too_large: impl Fn() -> Error) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn form_text(name: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes)
        .map(|t| t.trim().to_owned())
        .map_err(|_| Error::Invalid(format!("the form field `{name}` must be UTF-8 text")))
}

/// The upload form, as the document describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The document: PDF, DOCX, Markdown, plain text or HTML.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The customer agent config it belongs to.
    config_id: String,
    /// The knowledge base flows search; empty: the agent's default.
    collection: Option<String>,
}

/// Uploads a training document (owners and admins of the buyer
/// organisation); a durable job then processes it.
#[utoipa::path(
    post,
    path = "/api/training-documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; processing follows.", body = DocumentOut),
        (status = 403, description = "A member without the owner or admin role.", body = ErrorBody),
        (status = 503, description = "The host has no document index.", body = ErrorBody),
    ),
)]
async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<DocumentOut>)> {
    let mut multipart = multipart.map_err(|_| {
        Error::UnsupportedMediaType(
            "upload a document as `multipart/form-data` with a `file` part and a `config_id` field".into(),
        )
    })?;
    let limit = state.config.max_document_bytes;
    let mut file: Option<Upload> = None;
    let mut config_id = None;
    // The config, once known and the caller checked against it: a
    // `config_id` sent before the file (as curl's `-F` order does) spares
    // reading a stranger's upload at all.
    let mut config = None;
    let mut collection = String::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field.file_name().map(str::trim).unwrap_or_default().to_owned();
                let content_type = field.content_type().map(str::to_owned);
                let Some(kind) = Kind::detect(content_type.as_deref(), &filename) else {
                    return Err(Error::UnsupportedMediaType(format!(
                        "`{}` ({}) is not a supported document: upload PDF (application/pdf), DOCX \
                         ({}), Markdown (text/markdown), plain text (text/plain) or HTML (text/html)",
                        filename,
                        content_type.as_deref().unwrap_or("no content type"),
                        extract::DOCX_CONTENT_TYPE,
                    )));
                };
                let bytes = read_field(field, limit, || {
                    Error::TooLarge(format!("the document is over the limit of {limit} bytes (--max-document-bytes)"))
                })
                .await?;
                file = Some(Upload { filename, kind, bytes });
            }
            "config_id" | "collection" => {
                let too_large = || Error::Invalid(format!("the form field `{name}` is too long"));
                let text = form_text(&name, read_field(field, MAX_FORM_FIELD_BYTES, too_large).await?)?;
                if name == "config_id" {
                    if config_id.is_some() {
                        return Err(Error::Invalid("the form field `config_id` is given twice".into()));
                    }
                    if file.is_none() && !text.is_empty() {
                        config = Some(agent_configs::load(&state, &user, &text, true).await?);
                    }
                    config_id = Some(text);
                } else {
                    collection = text;
                }
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unknown form field `{other}`: send `file`, `config_id` and optionally `collection`"
                )));
            }
        }
    }
    let config_id = config_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Invalid("the form field `config_id` (the customer agent config) is missing".into()))?;
    let Upload { filename, kind, bytes } =
        file.ok_or_else(|| Error::Invalid("the form has no `file` part: attach the document as `file`".into()))?;
    if bytes.is_empty() {
        return Err(Error::Invalid("the document is empty".into()));
    }
    if collection.chars().count() > 100 || collection.chars().any(char::is_control) {
        return Err(Error::Invalid("`collection` must be at most 100 characters, without control characters".into()));
    }
    let filename = Some(filename)
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| format!("document.{}", kind.as_str()))
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect::<String>();
    if !kind.is_binary() && std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).is_err() {
        return Err(Error::Invalid(format!("`{filename}` is not UTF-8 text: save it as UTF-8 and upload it again")));
    }
    let config = match config {
        Some(config) => config,
        None => agent_configs::load(&state, &user, &config_id, true).await?,
    };
    if !matches!(config.resource_state.as_str(), "ok" | "updating") {
        return Err(Error::InvalidTransition(format!(
            "the subscription is {}; documents can be added only while it is active",
            config.resource_state
        )));
    }
    documents_available(&state)?;
    let id = new_id();
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO training_document (id, organization_id, config_id, resource_id, collection, filename, kind, \
         content_type, size_bytes, sha256, content, status, chunk_count, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'uploaded', 0, $12, $13, $13)",
    )
    .bind(&id)
    .bind(&config.organization_id)
    .bind(&config.id)
    .bind(&config.resource_id)
    .bind(&collection)
    .bind(&filename)
    .bind(kind.as_str())
    .bind(kind.content_type())
    .bind(bytes.len() as i64)
    .bind(hex::encode(Sha256::digest(&bytes)))
    .bind(bytes)
    .bind(&user.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    jobs::enqueue(&mut tx, PROCESS, &json!({ "document_id": id })).await?;
    tx.commit().await?;
    jobs::wake(&state);
    tracing::info!(document = %id, kind = kind.as_str(), "training document uploaded");
    Ok((StatusCode::CREATED, Json(load(&state, &user, &id, false).await?)))
}

fn documents_available(state: &AppState) -> Result<()> {
    if state.documents.is_none() {
        return Err(Error::Unavailable(
            "training documents need the document index: the operator sets --documents-url".into(),
        ));
    }
    Ok(())
}

/// Processes a document again (owners and admins); its chunks are replaced.
#[utoipa::path(
    post,
    path = "/api/training-documents/{id}/process",
    params(("id" = String, Path, description = "Document id.")),
    request_body = Option<super::Empty>,
    responses(
        (status = 202, description = "Queued for processing.", body = DocumentOut),
        (status = 403, description = "A member without the owner or admin role.", body = ErrorBody),
        (status = 503, description = "The host has no document index.", body = ErrorBody),
    ),
)]
async fn reprocess(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(_): OptionalJsonBody<super::Empty>,
) -> Result<(StatusCode, Json<DocumentOut>)> {
    load(&state, &user, &id, true).await?;
    documents_available(&state)?;
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE training_document SET status = 'uploaded', error = NULL, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    jobs::enqueue(&mut tx, PROCESS, &json!({ "document_id": id })).await?;
    tx.commit().await?;
    jobs::wake(&state);
    Ok((StatusCode::ACCEPTED, Json(load(&state, &user, &id, false).await?)))
}

/// Deletes a document and its chunks (owners and admins).
#[utoipa::path(
    delete,
    path = "/api/training-documents/{id}",
    params(("id" = String, Path, description = "Document id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "A member without the owner or admin role.", body = ErrorBody),
    ),
)]
async fn remove(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<StatusCode> {
    let document = load(&state, &user, &id, true).await?;
    // Chunks first: a document whose row is gone must not stay retrievable.
    if let Some(index) = &state.documents {
        let scope = documents::scope(&document.organization_id, &document.resource_id);
        index.delete_document(&scope, &id).await.map_err(Error::internal)?;
    }
    sqlx::query("DELETE FROM training_document WHERE id = $1").bind(&id).execute(state.db.pool()).await?;
    tracing::info!(document = %id, "training document deleted");
    Ok(StatusCode::NO_CONTENT)
}
