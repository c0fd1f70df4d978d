-- Training documents may be DOCX too. SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt (nothing references it).

CREATE TABLE training_document_new (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    config_id TEXT NOT NULL REFERENCES customer_agent_config (id) ON DELETE RESTRICT,
    resource_id TEXT NOT NULL REFERENCES resource (id) ON DELETE RESTRICT,
    -- The index collection (Langflow's knowledge base name) it goes to.
    collection TEXT NOT NULL,
    filename TEXT NOT NULL,
    -- pdf, docx, markdown, text or html.
    kind TEXT NOT NULL CHECK (kind IN ('pdf', 'docx', 'markdown', 'text', 'html')),
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('uploaded', 'processing', 'ready', 'failed')),
    error TEXT,
    chunk_count INTEGER NOT NULL,
    created_by TEXT NOT NULL REFERENCES user_account (id),
    processed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO training_document_new SELECT * FROM training_document;
DROP TABLE training_document;
ALTER TABLE training_document_new RENAME TO training_document;
CREATE INDEX training_document_config ON training_document (config_id, created_at);
CREATE INDEX training_document_organization ON training_document (organization_id, created_at);
