//! Sandflow's document index: the chunks of tenants' documents, searched
//! lexically (BM25), by vector similarity or both (hybrid).
//!
//! The control plane writes it (training documents, processed into chunks)
//! and the runtime host searches it (the `retrieval` capability), so it is a
//! crate of its own that neither depends on the other. [`DocIndex`] is
//! opened from a URL: a SQLite file (`documents.db` in the data directory by
//! default), `sqlite::memory:` in tests, or PostgreSQL; migrations are
//! embedded per dialect and run on open.
//!
//! [`extract`] turns uploaded documents (PDF, DOCX, HTML, Markdown, text)
//! into text within bounds, for both of them.
//!
//! Every chunk belongs to a [`Scope`] (tenant and agent), a collection and
//! a document. Every call takes the scope from its caller (the run's tenant
//! and agent, the buyer's organisation and agent), never from what a guest
//! or a user typed; query text only ever reaches the database as quoted
//! words ([`terms`]), so it cannot change what a query matches.
//!
//! Search ([`DocIndex::search`]):
//! - lexical: SQLite FTS5's `bm25()`, PostgreSQL's `ts_rank_cd` over a
//!   GIN-indexed `tsvector`; the query's words are OR-ed;
//! - vector: when the request carries a query embedding, cosine similarity
//!   against the chunks embedded with the same model, brute force within
//!   the scope (at most [`MAX_VECTOR_SCAN`] chunks);
//! - hybrid: both lists fused by reciprocal rank ([`RRF_K`]).
//!
//! ```
//! use sandflow_doc_index::{DocIndex, NewChunk, Scope, SearchRequest};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let index = DocIndex::open("sqlite::memory:").await.unwrap();
//! let scope = Scope::new("tenant-1", "agent-1");
//! let chunks = [NewChunk::text("Refunds are accepted within 30 days."), NewChunk::text("Shipping takes a week.")];
//! index.replace_document(&scope, "default", "policy.md", &chunks, None).await.unwrap();
//! let hits = index.search(&scope, &SearchRequest::lexical("", "refund", 3)).await.unwrap();
//! assert_eq!(hits[0].text, "Refunds are accepted within 30 days.");
//! # });
//! ```
#![deny(missing_docs)]

pub mod extract;
mod rank;
mod store;

pub use rank::{RRF_K, cosine, terms};
pub use store::{DocIndex, IndexError};

use serde::Serialize;

/// Most results one search returns; larger limits are cut to it.
pub const MAX_LIMIT: usize = 100;
/// Most chunks a vector search compares the query with.
pub const MAX_VECTOR_SCAN: i64 = 50_000;
/// Most chunks one scope (tenant and agent) may hold.
pub const MAX_CHUNKS_PER_SCOPE: i64 = 100_000;
/// Most bytes of one chunk's text.
pub const MAX_CHUNK_BYTES: usize = 64 << 10;
/// Most bytes one tenant's chunks may hold over all its agents (texts and
/// vectors): the index is one database for every tenant, and a flow that
/// ingests in a loop must not fill its disk.
pub const MAX_TENANT_BYTES: i64 = 1 << 30;

/// Whose chunks a call reads or writes. Built by the host or the control
/// plane from who is calling, never from request content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Tenant (the buyer organisation).
    pub tenant: String,
    /// Agent (the buyer's agent, i.e. their subscription).
    pub agent: String,
}

impl Scope {
    /// The scope of `agent` of `tenant`.
    pub fn new(tenant: impl Into<String>, agent: impl Into<String>) -> Self {
        Self { tenant: tenant.into(), agent: agent.into() }
    }
}

/// A chunk to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    /// Its text.
    pub text: String,
    /// What is known about it (source, offsets, …): a JSON object.
    pub metadata: serde_json::Value,
    /// Its vector, made with the model the write names.
    pub embedding: Option<Vec<f32>>,
}

impl NewChunk {
    /// A chunk of `text` without metadata or embedding.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), metadata: serde_json::json!({}), embedding: None }
    }
}

/// A query's embedding and the model that made it; only chunks embedded
/// with the same model are compared with it.
#[derive(Debug, Clone, Copy)]
pub struct QueryEmbedding<'a> {
    /// The embedding model.
    pub model: &'a str,
    /// The query's vector.
    pub vector: &'a [f32],
}

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    /// The collection; empty means every collection of the scope.
    pub collection: &'a str,
    /// The user's words.
    pub query: &'a str,
    /// Most results (at most [`MAX_LIMIT`]).
    pub limit: usize,
    /// The query's embedding, for vector or hybrid ranking.
    pub embedding: Option<QueryEmbedding<'a>>,
}

impl<'a> SearchRequest<'a> {
    /// A lexical search.
    pub fn lexical(collection: &'a str, query: &'a str, limit: usize) -> Self {
        Self { collection, query, limit, embedding: None }
    }
}

/// How a search ranked its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ranking {
    /// BM25 (or PostgreSQL's cover density) over the query's words.
    Lexical,
    /// Cosine similarity with the query's embedding.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
    /// Neither words nor an embedding: chunks in document order.
    None,
}

/// One chunk found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Row id.
    pub id: i64,
    /// Its collection.
    pub collection: String,
    /// Its document.
    pub document: String,
    /// Its position in the document.
    pub ordinal: i64,
    /// Its text.
    pub text: String,
    /// Its metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// Higher is better; comparable only within one search.
    pub score: f64,
    /// How it was ranked.
    pub ranking: Ranking,
}
