//! Training documents: what a buyer uploads for their agent to retrieve.
//!
//! An upload ([`crate::http::training_documents`]) stores the bytes in
//! `training_document` (status `uploaded`) and queues a [`PROCESS`] job in
//! the same transaction. The job ([`process`]) marks it `processing`,
//! extracts the text ([`extract`]), splits it into chunks ([`chunk`]) and
//! writes them into the document index under the buyer's organisation
//! (the runtime's tenant) and resource (the runtime's agent id, as the
//! change feed's `agent.provisioned` names it), replacing the document's
//! earlier chunks; then the document is `ready` with its chunk count. A
//! document that cannot be read ends `failed` with the reason (the job
//! itself succeeds: trying again would not help); an index that cannot
//! be reached fails the attempt, which the job queue retries, and the
//! document shows `failed` after the last attempt.

pub mod chunk;
pub use sandflow_doc_index::extract;

use crate::AppState;
use crate::config::Config;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::jobs::payload_text;
use extract::{ExtractError, Kind};
use sandflow_doc_index::{DocIndex, IndexError, NewChunk, Scope};
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

/// Processes a training document: payload `{"document_id"}`.
pub const PROCESS: &str = "process_document";

/// Most chunks one document may make.
pub const MAX_CHUNKS: usize = 20_000;

/// Opens the document index the control plane writes: `--documents-url`,
/// else `documents.db` in the data directory (which `sandflow serve`'s
/// runtime half reads too).
pub async fn open_index(config: &Config) -> Result<DocIndex, IndexError> {
    match &config.documents_url {
        Some(url) => DocIndex::open(url.expose()).await,
        None => DocIndex::open(&DocIndex::sqlite_url_in(&config.data_dir)).await,
    }
}

/// The index scope of a document of `organization` for `resource`: the
/// tenant and agent the runtime runs the buyer's agent as.
pub fn scope(organization: &str, resource: &str) -> Scope {
    Scope::new(organization, resource)
}

fn index(state: &AppState) -> Result<&DocIndex> {
    state.documents.as_ref().ok_or_else(|| {
        Error::Unavailable("training documents need the document index: the operator sets --documents-url".into())
    })
}

/// Runs the [`PROCESS`] job for `document_id`. A document deleted
/// meanwhile is nothing to do.
pub async fn process(state: &AppState, document_id: &str) -> Result<()> {
    let index = index(state)?;
    let row = sqlx::query(
        "UPDATE training_document SET status = 'processing', error = NULL, updated_at = $1 WHERE id = $2 \
         RETURNING organization_id, resource_id, collection, filename, kind, content",
    )
    .bind(now_ms())
    .bind(document_id)
    .fetch_optional(state.db.pool())
    .await?;
    let Some(row) = row else {
        tracing::info!(document = %document_id, "document is gone: nothing to process");
        return Ok(());
    };
    let organization: String = row.try_get("organization_id")?;
    let resource: String = row.try_get("resource_id")?;
    let collection: String = row.try_get("collection")?;
    let filename: String = row.try_get("filename")?;
    let kind_name: String = row.try_get("kind")?;
    let content: Vec<u8> = row.try_get("content")?;
    let kind = Kind::parse(&kind_name).ok_or_else(|| Error::internal(format!("unknown document kind {kind_name}")))?;
    let started = std::time::Instant::now();
    let chunks = match tokio::task::spawn_blocking(move || prepare(kind, &content)).await {
        Ok(Ok(chunks)) => chunks,
        Ok(Err(ExtractError(reason))) => return fail(state, document_id, &reason).await,
        // A parser that panics on a hostile file fails the document, not the process.
        Err(panic) if panic.is_panic() => {
            tracing::warn!(document = %document_id, "the document's parser panicked");
            return fail(state, document_id, "the document could not be read: it is malformed").await;
        }
        Err(other) => return Err(Error::internal(other)),
    };
    let new_chunks: Vec<NewChunk> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, (text, start, end))| NewChunk {
            text,
            metadata: json!({
                "document_id": document_id,
                "source": filename,
                "filename": filename,
                "content_type": kind.content_type(),
                "chunk": i,
                "start": start,
                "end": end,
            }),
            embedding: None,
        })
        .collect();
    let scope = scope(&organization, &resource);
    let written = match index.replace_document(&scope, &collection, document_id, &new_chunks, None).await {
        Ok(written) => written,
        Err(IndexError::Full(reason) | IndexError::Invalid(reason)) => return fail(state, document_id, &reason).await,
        Err(other) => return Err(Error::internal(other)),
    };
    let updated = sqlx::query(
        "UPDATE training_document SET status = 'ready', error = NULL, chunk_count = $1, processed_at = $2, \
         updated_at = $2 WHERE id = $3",
    )
    .bind(written as i64)
    .bind(now_ms())
    .bind(document_id)
    .execute(state.db.pool())
    .await?;
    if updated.rows_affected() == 0 {
        // Deleted while it was processed: take its chunks away again.
        index.delete_document(&scope, document_id).await.map_err(Error::internal)?;
    }
    tracing::info!(
        document = %document_id,
        tenant = %organization,
        agent = %resource,
        chunks = written,
        millis = started.elapsed().as_millis() as u64,
        "document processed"
    );
    Ok(())
}

/// Text and chunks of a document: `(text, start, end)` with byte offsets
/// into the extracted text.
fn prepare(kind: Kind, content: &[u8]) -> Result<Vec<(String, usize, usize)>, ExtractError> {
    let text = extract::extract(kind, content)?;
    let spans = chunk::chunks(&text);
    if spans.len() > MAX_CHUNKS {
        return Err(ExtractError(format!(
            "the document makes {} chunks; a document may make at most {MAX_CHUNKS}: split it",
            spans.len()
        )));
    }
    Ok(spans.into_iter().map(|s| (text[s.start..s.end].to_owned(), s.start, s.end)).collect())
}

/// Marks a document `failed` with `reason`; its earlier chunks stay out of
/// the index, so an agent never retrieves what the buyer sees as failed.
async fn fail(state: &AppState, document_id: &str, reason: &str) -> Result<()> {
    let row = sqlx::query(
        "UPDATE training_document SET status = 'failed', error = $1, chunk_count = 0, processed_at = $2, \
         updated_at = $2 WHERE id = $3 RETURNING organization_id, resource_id",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(document_id)
    .fetch_optional(state.db.pool())
    .await?;
    if let (Some(row), Ok(index)) = (row, index(state)) {
        let scope = scope(&row.try_get::<String, _>("organization_id")?, &row.try_get::<String, _>("resource_id")?);
        index.delete_document(&scope, document_id).await.map_err(Error::internal)?;
    }
    tracing::warn!(document = %document_id, reason, "document failed");
    Ok(())
}

/// After the last failed attempt of a [`PROCESS`] job, the document shows
/// the error.
pub async fn job_failed(tx: &mut Transaction<'_, Any>, payload: &Value, error: &str, last: bool) -> Result<()> {
    if last {
        sqlx::query(
            "UPDATE training_document SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3 \
             AND status IN ('uploaded', 'processing')",
        )
        .bind(format!("processing failed: {error}"))
        .bind(now_ms())
        .bind(payload_text(payload, "document_id")?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
