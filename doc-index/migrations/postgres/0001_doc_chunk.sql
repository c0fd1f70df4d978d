-- The document index: one row per chunk, scoped by tenant, agent,
-- collection and document. `text_hash` (SHA-256 of the text) lets ingestion
-- skip a chunk its collection already holds; `embedding` is the chunk's
-- vector as little-endian f32s, made with `embedding_model`. `tsv` is the
-- chunk's English full-text vector, GIN-indexed for ranked search.
CREATE TABLE doc_chunk (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    collection TEXT NOT NULL,
    document TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    embedding_model TEXT,
    embedding BYTEA,
    tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX doc_chunk_document ON doc_chunk (tenant, agent, document, ordinal);
CREATE INDEX doc_chunk_collection ON doc_chunk (tenant, agent, collection, text_hash);
CREATE INDEX doc_chunk_tsv ON doc_chunk USING GIN (tsv);
