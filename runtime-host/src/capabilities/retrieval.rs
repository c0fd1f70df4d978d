//! `sandflow:host/retrieval`: the tenant's indexed documents.
//!
//! Configure (operator): a [`DocIndex`] opened from a URL with [`open`]
//! (`documents.db` in the data directory by default, shared with the
//! control plane that writes training documents into it; PostgreSQL when
//! they run apart). With none, every call answers `not-configured`.
//! Prepare (per run): [`RunRetrieval`] binds the index to the run's tenant
//! and agent. Host: `search` ranks the scope's chunks lexically (BM25), by
//! vector or both (hybrid) when the request names an embedding model and
//! the host can embed (the query is embedded through `embeddings`, its
//! tokens counted into the run's usage); `ingest` adds chunks (embedded
//! when asked) to a collection of the scope.
//!
//! Isolation: the guest names a collection, never a tenant or an agent;
//! both come from the run, so no request can reach another tenant's or
//! agent's chunks. Query text reaches the database only as quoted words
//! (see `sandflow_doc_index::terms`). Bounds: [`MAX_QUERY_BYTES`],
//! [`MAX_INGEST_CHUNKS`] per call, `sandflow_doc_index::MAX_CHUNK_BYTES`
//! per chunk and `MAX_CHUNKS_PER_SCOPE` per agent; every call waits at most
//! until the run's deadline.

use super::embeddings::{self, Embedded};
use super::io;
use crate::bindings::node::sandflow::host::retrieval::{Chunk, Hit, Host, SearchRequest};
use crate::bindings::node::sandflow::host::types::{CapabilityError, ModelSettings};
use crate::sandbox::RunState;
use sandflow_doc_index::{DocIndex, IndexError, NewChunk, QueryEmbedding, Scope};
use serde_json::{Value, json};
use std::future::Future;

/// Longest query searched for, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 << 10;
/// Most chunks one `ingest` call adds.
pub const MAX_INGEST_CHUNKS: usize = 1_000;
/// The document ingested chunks belong to when their metadata names none.
pub const INGESTED_DOCUMENT: &str = "ingested";
/// Most chunks one search embeds that have no vector of its model yet.
pub const BACKFILL_CHUNKS: usize = 128;
/// The collection ingested chunks go to when the guest names none.
pub const DEFAULT_COLLECTION: &str = "default";

/// Opens the index at `url` on the capabilities' I/O runtime (whose
/// connections outlive the caller's runtime); callable from any runtime.
pub async fn open(url: &str) -> Result<DocIndex, IndexError> {
    let url = url.to_owned();
    io::run_on_io(async move { DocIndex::open(&url).await }).await
}

/// [`open`], waiting for it from a plain thread or from inside a runtime.
pub fn open_blocking(url: &str) -> Result<DocIndex, IndexError> {
    std::thread::scope(|scope| {
        scope.spawn(|| io::block_on(open(url))).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The index of one run, scoped to the run's tenant and agent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunRetrieval {
    index: Option<(DocIndex, Scope)>,
}

impl RunRetrieval {
    /// Binds `index` (if the host has one) to `tenant` and `agent`.
    pub fn prepare(index: Option<&DocIndex>, tenant: &str, agent: &str) -> Self {
        Self { index: index.map(|i| (i.clone(), Scope::new(tenant, agent))) }
    }

    fn index(&self) -> Result<(DocIndex, Scope), CapabilityError> {
        self.index.clone().ok_or_else(|| {
            CapabilityError::NotConfigured(
                "the `retrieval` capability is not configured on this host; the operator sets --documents-url".into(),
            )
        })
    }
}

impl RunState {
    /// Runs one index operation on the I/O runtime, bounded by the run's
    /// remaining time; database errors stay in the host's log.
    fn index_call<T, F>(&self, operation: impl FnOnce(DocIndex, Scope) -> F) -> Result<T, CapabilityError>
    where
        F: Future<Output = Result<T, IndexError>>,
    {
        let (index, scope) = self.caps.retrieval.index()?;
        let remaining =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        match io::block_on(async { tokio::time::timeout(remaining, operation(index, scope)).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(IndexError::Invalid(message))) => Err(CapabilityError::Invalid(message)),
            Ok(Err(IndexError::Full(message))) => Err(CapabilityError::Denied(message)),
            Ok(Err(error)) => {
                tracing::error!(%error, "document index call failed");
                Err(CapabilityError::Failed("the document index is unavailable; try again later".into()))
            }
            Err(_) => {
                Err(CapabilityError::Denied("the document index did not answer before the run's deadline".into()))
            }
        }
    }

    /// Embeds `texts` when `settings` ask for it and the host can; `None`
    /// when they do not ask, or when the host has no embeddings provider
    /// and lexical ranking must do.
    fn maybe_embed(
        &mut self,
        settings: Option<&ModelSettings>,
        texts: &[String],
    ) -> Result<Option<Embedded>, CapabilityError> {
        let Some(settings) = settings else { return Ok(None) };
        if !self.embeddings_available() {
            tracing::debug!("no embeddings provider: lexical ranking only");
            return Ok(None);
        }
        self.embed_texts(settings, texts).map(Some)
    }
}

impl Host for RunState {
    fn search(&mut self, request: SearchRequest) -> Result<Vec<Hit>, CapabilityError> {
        self.caps.retrieval.index()?;
        if request.query.len() > MAX_QUERY_BYTES {
            return Err(CapabilityError::Invalid(format!(
                "the query is {} bytes; the limit is {MAX_QUERY_BYTES}",
                request.query.len()
            )));
        }
        let span = tracing::info_span!(
            "runtime_host.retrieval",
            operation = "search",
            limit = request.limit,
            embedded = request.embedding.is_some(),
            hits = tracing::field::Empty,
        );
        let _entered = span.enter();
        let wants_vector = request.embedding.is_some() && !request.query.trim().is_empty();
        let settings = request.embedding.as_ref().filter(|_| wants_vector);
        let embedded = match self.maybe_embed(settings, std::slice::from_ref(&request.query)) {
            Ok(embedded) => embedded,
            // A search still answers, ranked by words, when the embeddings
            // provider fails (the failure is in the host's log).
            Err(CapabilityError::Failed(_)) => None,
            Err(other) => return Err(other),
        };
        if let Some(embedded) = &embedded {
            self.embed_pending(request.collection.trim(), request.embedding.as_ref(), &embedded.model);
        }
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let hits = self.index_call(|index, scope| async move {
            let vector = embedded.as_ref().and_then(|e| e.vectors.first().map(|v| (e.model.as_str(), v.as_slice())));
            let search = sandflow_doc_index::SearchRequest {
                collection: request.collection.trim(),
                query: &request.query,
                limit,
                embedding: vector.map(|(model, vector)| QueryEmbedding { model, vector }),
            };
            index.search(&scope, &search).await
        })?;
        span.record("hits", hits.len());
        Ok(hits
            .into_iter()
            .map(|hit| {
                let mut metadata = match hit.metadata {
                    Value::Object(object) => object,
                    _ => serde_json::Map::new(),
                };
                metadata.entry("collection").or_insert_with(|| json!(hit.collection));
                metadata.entry("ordinal").or_insert_with(|| json!(hit.ordinal));
                metadata.entry("ranking").or_insert_with(|| json!(hit.ranking));
                Hit {
                    document: hit.document,
                    text: hit.text,
                    score: hit.score,
                    metadata: Value::Object(metadata).to_string(),
                }
            })
            .collect())
    }

    fn ingest(
        &mut self,
        collection: String,
        chunks: Vec<Chunk>,
        embedding: Option<ModelSettings>,
    ) -> Result<u32, CapabilityError> {
        self.caps.retrieval.index()?;
        if chunks.len() > MAX_INGEST_CHUNKS {
            return Err(CapabilityError::Invalid(format!(
                "{} chunks; one ingest call adds at most {MAX_INGEST_CHUNKS}",
                chunks.len()
            )));
        }
        let span = tracing::info_span!("runtime_host.retrieval", operation = "ingest", chunks = chunks.len());
        let _entered = span.enter();
        let collection = Some(collection.trim().to_owned()).filter(|c| !c.is_empty());
        let collection = collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        let mut new_chunks = Vec::with_capacity(chunks.len());
        let mut documents = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.into_iter().enumerate() {
            let metadata: Value = match serde_json::from_str(if chunk.metadata.trim().is_empty() {
                "{}"
            } else {
                chunk.metadata.as_str()
            }) {
                Ok(value @ Value::Object(_)) => value,
                _ => return Err(CapabilityError::Invalid(format!("chunk {i}'s metadata is not a JSON object"))),
            };
            documents.push(document_of(&metadata));
            new_chunks.push(NewChunk { text: chunk.text, metadata, embedding: None });
        }
        // Without an embeddings provider, chunks are stored for lexical search.
        if let Some(settings) = embedding.as_ref().filter(|_| self.embeddings_available()) {
            let texts: Vec<String> = new_chunks.iter().map(|c| c.text.clone()).collect();
            let mut model = None;
            for batch in texts.chunks(embeddings::MAX_TEXTS).enumerate() {
                let (n, batch) = batch;
                let embedded = self.embed_texts(settings, batch)?;
                for (j, vector) in embedded.vectors.into_iter().enumerate() {
                    new_chunks[n * embeddings::MAX_TEXTS + j].embedding = Some(vector);
                }
                model = Some(embedded.model);
            }
            return self.write_ingested(collection, new_chunks, documents, model);
        }
        self.write_ingested(collection, new_chunks, documents, None)
    }
}

impl RunState {
    /// Embeds up to [`BACKFILL_CHUNKS`] chunks of the scope that have no
    /// vector of `model` yet (training documents are written without), so
    /// hybrid search covers them from then on, as many as one embeddings
    /// call takes. Best effort: a failure is logged, the chunks go behind
    /// the others waiting, and the search goes on.
    fn embed_pending(&mut self, collection: &str, settings: Option<&ModelSettings>, model: &str) {
        let Some(settings) = settings else { return };
        let pending = {
            let (collection, model) = (collection.to_owned(), model.to_owned());
            self.index_call(|index, scope| async move {
                index.unembedded(&scope, &collection, &model, BACKFILL_CHUNKS).await
            })
        };
        let pending = match pending {
            Ok(pending) if !pending.is_empty() => pending,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(?error, "cannot list chunks to embed");
                return;
            }
        };
        let pending = &pending[..one_call(&pending)];
        let texts: Vec<String> = pending.iter().map(|(_, text)| text.clone()).collect();
        let embedded = match self.embed_texts(settings, &texts) {
            Ok(embedded) if embedded.model == model => embedded,
            Ok(_) => return,
            Err(error) => {
                // Behind the others, so that a chunk the provider refuses
                // does not keep every later one out of vector search.
                tracing::warn!(?error, "cannot embed the scope's chunks; trying later ones first");
                let ids: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
                if let Err(error) = self.index_call(|index, scope| async move { index.postpone(&scope, &ids).await }) {
                    tracing::warn!(?error, "cannot postpone the chunks that failed to embed");
                }
                return;
            }
        };
        let vectors: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, _)| *id).zip(embedded.vectors).collect();
        let model = model.to_owned();
        let stored =
            self.index_call(|index, scope| async move { index.set_embeddings(&scope, &model, &vectors).await });
        match stored {
            Ok(n) => tracing::debug!(chunks = n, "embedded chunks for hybrid search"),
            Err(error) => tracing::warn!(?error, "cannot store the chunks' vectors"),
        }
    }

    fn write_ingested(
        &self,
        collection: String,
        chunks: Vec<NewChunk>,
        documents: Vec<String>,
        model: Option<String>,
    ) -> Result<u32, CapabilityError> {
        let added = self.index_call(|index, scope| async move {
            // One ingest per document the chunks name, in their order.
            let mut added = 0;
            let mut start = 0;
            while start < chunks.len() {
                let end = (start..chunks.len()).find(|&i| documents[i] != documents[start]).unwrap_or(chunks.len());
                added +=
                    index.ingest(&scope, &collection, &documents[start], &chunks[start..end], model.as_deref()).await?;
                start = end;
            }
            Ok::<_, IndexError>(added)
        })?;
        Ok(u32::try_from(added).unwrap_or(u32::MAX))
    }
}

/// How many of `pending`'s first chunks one embeddings call takes (at
/// least one: a chunk too large is the provider's to refuse).
fn one_call(pending: &[(i64, String)]) -> usize {
    let mut bytes = 0;
    let fit = pending.iter().take_while(|(_, text)| {
        bytes += text.len();
        bytes <= embeddings::MAX_INPUT_BYTES
    });
    fit.count().max(1)
}

/// The document a chunk belongs to: its metadata's `document`, `source`
/// or `file_path`, else [`INGESTED_DOCUMENT`].
fn document_of(metadata: &Value) -> String {
    ["document", "source", "file_path"]
        .iter()
        .find_map(|k| metadata.get(*k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()))
        .map_or_else(|| INGESTED_DOCUMENT.to_owned(), |s| s.chars().take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_call_takes_what_fits() {
        let chunk = |kib: usize| (0, "x".repeat(kib << 10));
        assert_eq!(one_call(&[chunk(64), chunk(64)]), 2);
        let large: Vec<_> = (0..128).map(|_| chunk(64)).collect();
        assert_eq!(one_call(&large), embeddings::MAX_INPUT_BYTES / (64 << 10), "8 MiB would be refused whole");
        assert_eq!(one_call(&[chunk(5 << 10)]), 1, "one too large is tried alone");
    }

    #[test]
    fn chunks_name_their_document() {
        assert_eq!(document_of(&json!({"source": "a.pdf"})), "a.pdf");
        assert_eq!(document_of(&json!({"file_path": " b.txt "})), "b.txt");
        assert_eq!(document_of(&json!({"source": 3})), INGESTED_DOCUMENT);
        assert_eq!(document_of(&json!({})), INGESTED_DOCUMENT);
    }
}
