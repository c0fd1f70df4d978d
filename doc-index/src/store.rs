//! The index's storage: one pool over SQLite or PostgreSQL through sqlx's
//! `Any` driver, migrations per dialect (`migrations/{sqlite,postgres}`,
//! append-only, embedded with [`sandflow_sql_migrations`]). Query texts
//! differ only where full-text search does.

use crate::rank::{self, decode, encode, fuse};
use crate::{
    Hit, MAX_CHUNK_BYTES, MAX_CHUNKS_PER_SCOPE, MAX_LIMIT, MAX_TENANT_BYTES, MAX_VECTOR_SCAN, NewChunk, Ranking, Scope,
    SearchRequest,
};
use futures_util::TryStreamExt;
use sandflow_sql_migrations::store::{Dialect, OpenError, StoreUrl};
use sandflow_sql_migrations::{Embedded, embedded};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const SQLITE_MIGRATIONS: &[Embedded] =
    embedded!("../migrations/sqlite": (1, "0001_doc_chunk"), (2, "0002_tenant_bytes"));
const POSTGRES_MIGRATIONS: &[Embedded] =
    embedded!("../migrations/postgres": (1, "0001_doc_chunk"), (2, "0002_tenant_bytes"));

impl From<OpenError> for IndexError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::UnsupportedUrl(url) => Self::UnsupportedUrl(url),
            OpenError::Directory { path, source } => Self::Directory { path, source },
            OpenError::Database(error) => Self::Database(error),
        }
    }
}

/// Why the index refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported document index URL `{0}`: use sqlite://PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
    /// The request breaks a rule (empty text, NUL characters, too large).
    #[error("{0}")]
    Invalid(String),
    /// The scope would hold more than [`MAX_CHUNKS_PER_SCOPE`] chunks, or
    /// its tenant more than [`MAX_TENANT_BYTES`].
    #[error("{0}")]
    Full(String),
    /// The database failed.
    #[error("the document index failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the document index: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The directory of the SQLite file could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The document index: cheap to clone (one connection pool).
#[derive(Clone)]
pub struct DocIndex {
    pool: AnyPool,
    dialect: Dialect,
    /// Where it is, password hidden.
    url: String,
}

impl std::fmt::Debug for DocIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocIndex").field("url", &self.url).finish()
    }
}

const HIT_COLUMNS: &str = "c.id, c.collection, c.document, c.ordinal, c.text, c.metadata";

impl DocIndex {
    /// Opens (creating a SQLite file and its directory if needed) and
    /// migrates the index at `url`: `sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://…`. Its connections belong to the calling runtime.
    pub async fn open(url: &str) -> Result<Self, IndexError> {
        let url = StoreUrl::parse(url)?;
        // WAL lets searches run beside a writer (the control plane and the
        // runtime share the file); writers wait for each other.
        let pool =
            url.connect("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;").await?;
        let (dialect, shown) = (url.dialect, url.shown);
        match dialect {
            Dialect::Sqlite => sandflow_sql_migrations::migrator(SQLITE_MIGRATIONS).await?.run(&pool).await?,
            Dialect::Postgres => sandflow_sql_migrations::migrator(POSTGRES_MIGRATIONS).await?.run(&pool).await?,
        }
        Ok(Self { pool, dialect, url: shown })
    }

    /// The URL of the SQLite file `documents.db` in `data_dir`.
    pub fn sqlite_url_in(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("documents.db").display())
    }

    /// Replaces every chunk of `document` in `scope` with `chunks` (in
    /// order), in one transaction: a re-processed document never shows
    /// old and new chunks together. `embedding_model` names the model of
    /// the chunks' embeddings. Returns how many were written.
    pub async fn replace_document(
        &self,
        scope: &Scope,
        collection: &str,
        document: &str,
        chunks: &[NewChunk],
        embedding_model: Option<&str>,
    ) -> Result<usize, IndexError> {
        check_chunks(chunks)?;
        let mut tx = self.pool.begin().await?;
        delete(&mut tx, scope, document).await?;
        check_room(&mut tx, scope, &chunks.iter().collect::<Vec<_>>()).await?;
        for (ordinal, chunk) in chunks.iter().enumerate() {
            insert(&mut tx, scope, collection, document, ordinal as i64, chunk, embedding_model).await?;
        }
        tx.commit().await?;
        Ok(chunks.len())
    }

    /// Adds `chunks` to `document` of `collection` in `scope`, after its
    /// existing ones, skipping any whose text the collection already holds
    /// (running an ingesting flow twice stores each chunk once). Returns
    /// how many were added.
    pub async fn ingest(
        &self,
        scope: &Scope,
        collection: &str,
        document: &str,
        chunks: &[NewChunk],
        embedding_model: Option<&str>,
    ) -> Result<usize, IndexError> {
        check_chunks(chunks)?;
        let mut tx = self.pool.begin().await?;
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        for chunk in chunks {
            let hash = text_hash(&chunk.text);
            if !seen.insert(hash.clone()) {
                continue;
            }
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM doc_chunk WHERE tenant = $1 AND agent = $2 AND collection = $3 AND text_hash = $4 \
                 LIMIT 1",
            )
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .bind(collection)
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                fresh.push(chunk);
            }
        }
        check_room(&mut tx, scope, &fresh).await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(ordinal), -1) + 1 AS BIGINT) FROM doc_chunk \
             WHERE tenant = $1 AND agent = $2 AND document = $3",
        )
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(document)
        .fetch_one(&mut *tx)
        .await?;
        for (i, chunk) in fresh.iter().enumerate() {
            insert(&mut tx, scope, collection, document, next + i as i64, chunk, embedding_model).await?;
        }
        tx.commit().await?;
        Ok(fresh.len())
    }

    /// Up to `limit` chunks of `scope` (of `collection`, when not empty)
    /// that have no vector of `model`, least recently written or
    /// [postponed](DocIndex::postpone) first: `(id, text)`. The
    /// runtime embeds them when a hybrid search asks for `model`, so
    /// documents written without vectors (training documents) join vector
    /// search after their first searches.
    pub async fn unembedded(
        &self,
        scope: &Scope,
        collection: &str,
        model: &str,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, IndexError> {
        let rows = sqlx::query(
            "SELECT id, text FROM doc_chunk WHERE tenant = $1 AND agent = $2 AND ($3 = '' OR collection = $3) \
             AND (embedding_model IS NULL OR embedding_model <> $4) ORDER BY updated_at, id LIMIT $5",
        )
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(collection)
        .bind(model)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("text")?))).collect()
    }

    /// Stores vectors of `model` for chunks of `scope` (by id, as
    /// [`DocIndex::unembedded`] named them); ids of other scopes are left
    /// alone. Returns how many were stored.
    pub async fn set_embeddings(
        &self,
        scope: &Scope,
        model: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> Result<u64, IndexError> {
        if vectors.iter().any(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            return Err(IndexError::Invalid("an embedding is not finite".into()));
        }
        let mut tx = self.pool.begin().await?;
        let mut stored = 0;
        for (id, vector) in vectors {
            stored += sqlx::query(
                "UPDATE doc_chunk SET embedding_model = $1, embedding = $2, updated_at = $3 \
                 WHERE id = $4 AND tenant = $5 AND agent = $6",
            )
            .bind(model)
            .bind(encode(vector))
            .bind(now_ms())
            .bind(*id)
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Puts chunks of `scope` (by id) behind every other chunk waiting for
    /// a vector, after embedding them failed: a chunk no provider takes
    /// (too many tokens, say) must not hold up the ones behind it.
    pub async fn postpone(&self, scope: &Scope, ids: &[i64]) -> Result<(), IndexError> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE doc_chunk SET updated_at = \
                 (SELECT MAX(updated_at) + 1 FROM doc_chunk WHERE tenant = $1 AND agent = $2) \
                 WHERE id = $3 AND tenant = $1 AND agent = $2",
            )
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes every chunk of `document` in `scope`; returns how many.
    pub async fn delete_document(&self, scope: &Scope, document: &str) -> Result<u64, IndexError> {
        let mut tx = self.pool.begin().await?;
        let deleted = delete(&mut tx, scope, document).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// How many chunks `scope` holds (of `document`, when given).
    pub async fn count(&self, scope: &Scope, document: Option<&str>) -> Result<i64, IndexError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM doc_chunk WHERE tenant = $1 AND agent = $2 \
             AND ($3 = '' OR document = $3)",
        )
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(document.unwrap_or_default())
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// Bytes of text and vectors `tenant`'s chunks hold, over all its
    /// agents (counted against [`MAX_TENANT_BYTES`]).
    pub async fn tenant_bytes(&self, tenant: &str) -> Result<i64, IndexError> {
        let bytes: Option<i64> = sqlx::query_scalar("SELECT bytes FROM doc_tenant_bytes WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        Ok(bytes.unwrap_or(0))
    }

    /// Searches `scope`: lexical when the request has words, vector when it
    /// has an embedding, hybrid (reciprocal rank fusion) when it has both;
    /// without either, the first chunks in document order. At most
    /// [`MAX_LIMIT`] hits, best first.
    pub async fn search(&self, scope: &Scope, request: &SearchRequest<'_>) -> Result<Vec<Hit>, IndexError> {
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let terms = rank::terms(request.query);
        // Fusion looks deeper into each list than it returns.
        let depth = if request.embedding.is_some() && !terms.is_empty() { (limit * 4).min(200) } else { limit };
        let lexical = if terms.is_empty() { None } else { Some(self.lexical(scope, request, &terms, depth).await?) };
        let vector = match request.embedding {
            Some(embedding) => Some(self.vector(scope, request.collection, embedding, depth).await?),
            None => None,
        };
        Ok(match (lexical, vector) {
            (Some(lexical), Some(vector)) => fuse(&[lexical, vector], limit),
            (Some(hits), None) | (None, Some(hits)) => hits.into_iter().take(limit).collect(),
            (None, None) => self.first(scope, request.collection, limit).await?,
        })
    }

    async fn lexical(
        &self,
        scope: &Scope,
        request: &SearchRequest<'_>,
        terms: &[String],
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let (sql, query) = match self.dialect {
            Dialect::Sqlite => (
                format!(
                    "SELECT {HIT_COLUMNS}, -bm25(doc_chunk_fts) AS score FROM doc_chunk_fts \
                     JOIN doc_chunk c ON c.id = doc_chunk_fts.rowid \
                     WHERE doc_chunk_fts MATCH $1 AND c.tenant = $2 AND c.agent = $3 \
                     AND ($4 = '' OR c.collection = $4) ORDER BY score DESC, c.id LIMIT $5"
                ),
                rank::fts5_query(terms),
            ),
            Dialect::Postgres => (
                format!(
                    "SELECT {HIT_COLUMNS}, CAST(ts_rank_cd(c.tsv, q.query) AS DOUBLE PRECISION) AS score \
                     FROM doc_chunk c, to_tsquery('english', $1) AS q(query) \
                     WHERE c.tsv @@ q.query AND c.tenant = $2 AND c.agent = $3 \
                     AND ($4 = '' OR c.collection = $4) ORDER BY score DESC, c.id LIMIT $5"
                ),
                rank::tsquery(terms),
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(query)
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .bind(request.collection)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| hit(row, row.try_get("score")?, Ranking::Lexical)).collect()
    }

    async fn vector(
        &self,
        scope: &Scope,
        collection: &str,
        embedding: crate::QueryEmbedding<'_>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        // Scored row by row: the vectors together (up to 50,000 of them, of
        // thousands of dimensions) would be hundreds of megabytes at once.
        let mut rows = sqlx::query(
            "SELECT id, embedding FROM doc_chunk WHERE tenant = $1 AND agent = $2 AND ($3 = '' OR collection = $3) \
             AND embedding_model = $4 AND embedding IS NOT NULL ORDER BY id LIMIT $5",
        )
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(collection)
        .bind(embedding.model)
        .bind(MAX_VECTOR_SCAN)
        .fetch(&self.pool);
        let mut scored = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let bytes: Vec<u8> = row.try_get("embedding")?;
            scored.push((row.try_get::<i64, _>("id")?, rank::cosine(embedding.vector, &decode(&bytes))));
        }
        drop(rows);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(limit);
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..scored.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT {HIT_COLUMNS} FROM doc_chunk c WHERE c.tenant = $1 AND c.agent = $2 AND c.id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(&scope.tenant).bind(&scope.agent);
        for (id, _) in &scored {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut hits = Vec::with_capacity(scored.len());
        for (id, score) in scored {
            if let Some(row) = rows.iter().find(|r| r.try_get::<i64, _>("id").ok() == Some(id)) {
                hits.push(hit(row, score, Ranking::Vector)?);
            }
        }
        Ok(hits)
    }

    async fn first(&self, scope: &Scope, collection: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let rows = sqlx::query(&format!(
            "SELECT {HIT_COLUMNS} FROM doc_chunk c WHERE c.tenant = $1 AND c.agent = $2 \
             AND ($3 = '' OR c.collection = $3) ORDER BY c.document, c.ordinal, c.id LIMIT $4"
        ))
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(collection)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| hit(row, 0.0, Ranking::None)).collect()
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn hit(row: &AnyRow, score: f64, ranking: Ranking) -> Result<Hit, IndexError> {
    let metadata: String = row.try_get("metadata")?;
    Ok(Hit {
        id: row.try_get("id")?,
        collection: row.try_get("collection")?,
        document: row.try_get("document")?,
        ordinal: row.try_get("ordinal")?,
        text: row.try_get("text")?,
        metadata: serde_json::from_str(&metadata).unwrap_or_else(|_| serde_json::json!({})),
        score,
        ranking,
    })
}

fn check_chunks(chunks: &[NewChunk]) -> Result<(), IndexError> {
    for (i, chunk) in chunks.iter().enumerate() {
        if chunk.text.trim().is_empty() {
            return Err(IndexError::Invalid(format!("chunk {i} has no text")));
        }
        if chunk.text.len() > MAX_CHUNK_BYTES {
            return Err(IndexError::Invalid(format!(
                "chunk {i} is {} bytes; a chunk holds at most {MAX_CHUNK_BYTES}",
                chunk.text.len()
            )));
        }
        if chunk.text.contains('\0') || chunk.metadata.to_string().contains("\\u0000") {
            return Err(IndexError::Invalid(format!("chunk {i} contains a NUL character")));
        }
        if chunk.embedding.as_ref().is_some_and(|e| e.iter().any(|x| !x.is_finite())) {
            return Err(IndexError::Invalid(format!("chunk {i}'s embedding is not finite")));
        }
    }
    Ok(())
}

async fn check_room(tx: &mut Transaction<'_, Any>, scope: &Scope, adding: &[&NewChunk]) -> Result<(), IndexError> {
    let held: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM doc_chunk WHERE tenant = $1 AND agent = $2")
            .bind(&scope.tenant)
            .bind(&scope.agent)
            .fetch_one(&mut **tx)
            .await?;
    if held + adding.len() as i64 > MAX_CHUNKS_PER_SCOPE {
        return Err(IndexError::Full(format!(
            "the agent's document index holds {held} chunks; adding {} would pass its limit of \
             {MAX_CHUNKS_PER_SCOPE}: delete documents first",
            adding.len()
        )));
    }
    let stored: Option<i64> = sqlx::query_scalar("SELECT bytes FROM doc_tenant_bytes WHERE tenant = $1")
        .bind(&scope.tenant)
        .fetch_optional(&mut **tx)
        .await?;
    let stored = stored.unwrap_or(0);
    let bytes: i64 = adding.iter().map(|c| stored_bytes(c)).sum();
    if stored.saturating_add(bytes) > MAX_TENANT_BYTES {
        return Err(IndexError::Full(format!(
            "the tenant's documents hold {} MiB; adding {} KiB would pass its limit of {} MiB: delete \
             documents first",
            stored >> 20,
            bytes >> 10,
            MAX_TENANT_BYTES >> 20
        )));
    }
    Ok(())
}

/// What a chunk adds to its tenant's bytes: its text and its vector, as
/// the migration's triggers count them.
fn stored_bytes(chunk: &NewChunk) -> i64 {
    let vector = chunk.embedding.as_ref().map_or(0, |e| e.len() * 4);
    i64::try_from(chunk.text.len() + vector).unwrap_or(i64::MAX)
}

async fn delete(tx: &mut Transaction<'_, Any>, scope: &Scope, document: &str) -> Result<u64, IndexError> {
    let deleted = sqlx::query("DELETE FROM doc_chunk WHERE tenant = $1 AND agent = $2 AND document = $3")
        .bind(&scope.tenant)
        .bind(&scope.agent)
        .bind(document)
        .execute(&mut **tx)
        .await?;
    Ok(deleted.rows_affected())
}

async fn insert(
    tx: &mut Transaction<'_, Any>,
    scope: &Scope,
    collection: &str,
    document: &str,
    ordinal: i64,
    chunk: &NewChunk,
    embedding_model: Option<&str>,
) -> Result<(), IndexError> {
    let now = now_ms();
    let metadata = if chunk.metadata.is_object() { chunk.metadata.to_string() } else { "{}".to_owned() };
    let (model, embedding) = match (&chunk.embedding, embedding_model) {
        (Some(vector), Some(model)) => (Some(model.to_owned()), Some(encode(vector))),
        _ => (None, None),
    };
    sqlx::query(
        "INSERT INTO doc_chunk (tenant, agent, collection, document, ordinal, text, text_hash, metadata, \
         embedding_model, embedding, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&scope.tenant)
    .bind(&scope.agent)
    .bind(collection)
    .bind(document)
    .bind(ordinal)
    .bind(&chunk.text)
    .bind(text_hash(&chunk.text))
    .bind(metadata)
    .bind(model)
    .bind(embedding)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn text_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for (dialect, list) in [("sqlite", SQLITE_MIGRATIONS), ("postgres", POSTGRES_MIGRATIONS)] {
            sandflow_sql_migrations::check_directory(&dir.join(dialect), list).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(sandflow_sql_migrations::store::redact_url("postgres://u:secret@h/d"), "postgres://u:***@h/d");
    }
}
