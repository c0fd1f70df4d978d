-- `id` becomes a plain INTEGER PRIMARY KEY (the rowid) instead of
-- AUTOINCREMENT. AUTOINCREMENT made every insert read and rewrite the
-- table's row in `sqlite_sequence`, about a fifth of what storing a
-- message cost, only to keep the ids of deleted rows from coming back.
-- Nothing refers to `id` but the order of a session's history, and a
-- rowid is still larger than every id in the table when it is taken, so
-- messages keep the order they were appended in.
CREATE TABLE memory_message_rowid (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    session_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    files TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

INSERT INTO memory_message_rowid
    (id, message_id, tenant, agent, session_id, sender, sender_name, text, files, properties, created_at, updated_at)
SELECT id, message_id, tenant, agent, session_id, sender, sender_name, text, files, properties, created_at, updated_at
FROM memory_message;

DROP TABLE memory_message;
ALTER TABLE memory_message_rowid RENAME TO memory_message;
CREATE INDEX memory_message_session ON memory_message (tenant, agent, session_id, id);
