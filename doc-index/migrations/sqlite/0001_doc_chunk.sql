-- The document index: one row per chunk, scoped by tenant, agent,
-- collection and document. `text_hash` (SHA-256 of the text) lets ingestion
-- skip a chunk its collection already holds; `embedding` is the chunk's
-- vector as little-endian f32s, made with `embedding_model`.
CREATE TABLE doc_chunk (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    collection TEXT NOT NULL,
    document TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    embedding_model TEXT,
    embedding BLOB,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX doc_chunk_document ON doc_chunk (tenant, agent, document, ordinal);
CREATE INDEX doc_chunk_collection ON doc_chunk (tenant, agent, collection, text_hash);

-- BM25 over the chunks' text (an external-content FTS5 table kept in step
-- by triggers); Porter stemming over Unicode words.
CREATE VIRTUAL TABLE doc_chunk_fts USING fts5(
    text,
    content = 'doc_chunk',
    content_rowid = 'id',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER doc_chunk_fts_insert AFTER INSERT ON doc_chunk BEGIN
    INSERT INTO doc_chunk_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER doc_chunk_fts_delete AFTER DELETE ON doc_chunk BEGIN
    INSERT INTO doc_chunk_fts (doc_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER doc_chunk_fts_update AFTER UPDATE OF text ON doc_chunk BEGIN
    INSERT INTO doc_chunk_fts (doc_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO doc_chunk_fts (rowid, text) VALUES (new.id, new.text);
END;
