-- Agent API keys (JWTs the runtime hosts verify). Only the SHA-256 of the
-- key text is kept, with a short prefix to recognise it by.

CREATE TABLE agent_api_key (
    id TEXT PRIMARY KEY NOT NULL,
    config_id TEXT NOT NULL REFERENCES customer_agent_config (id) ON DELETE RESTRICT,
    resource_id TEXT NOT NULL REFERENCES resource (id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    -- JSON array: run, widget.
    scopes TEXT NOT NULL,
    kid TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES user_account (id),
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT agent_api_key_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX agent_api_key_config ON agent_api_key (config_id);
CREATE INDEX agent_api_key_resource ON agent_api_key (resource_id);
