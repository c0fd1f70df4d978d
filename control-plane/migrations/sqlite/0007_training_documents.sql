-- Buyers' training documents: the uploaded bytes (kept here, so one backup
-- holds them and a document can be processed again), what processing made
-- of them and why it failed. The chunks live in the document index, under
-- the buyer's organisation (tenant) and resource (the runtime's agent id).

CREATE TABLE training_document (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    config_id TEXT NOT NULL REFERENCES customer_agent_config (id) ON DELETE RESTRICT,
    resource_id TEXT NOT NULL REFERENCES resource (id) ON DELETE RESTRICT,
    -- The index collection (Langflow's knowledge base name) it goes to.
    collection TEXT NOT NULL,
    filename TEXT NOT NULL,
    -- pdf, markdown, text or html.
    kind TEXT NOT NULL CHECK (kind IN ('pdf', 'markdown', 'text', 'html')),
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
CREATE INDEX training_document_config ON training_document (config_id, created_at);
CREATE INDEX training_document_organization ON training_document (organization_id, created_at);
