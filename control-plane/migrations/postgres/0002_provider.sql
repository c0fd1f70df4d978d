-- Seller journey: requests for service-provider status, provider agents
-- and their immutable flow versions.

CREATE TABLE provider_request (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    note TEXT NOT NULL,
    requested_by TEXT NOT NULL REFERENCES user_account (id),
    decided_by TEXT REFERENCES user_account (id),
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one open request per organisation.
CREATE UNIQUE INDEX provider_request_pending_key ON provider_request (organization_id) WHERE status = 'pending';
CREATE INDEX provider_request_status ON provider_request (status, created_at);

CREATE TABLE provider_agent (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT provider_agent_name_key UNIQUE (organization_id, name)
);

-- Rows are never updated: a new import is a new version.
CREATE TABLE flow_version (
    id TEXT PRIMARY KEY NOT NULL,
    provider_agent_id TEXT NOT NULL REFERENCES provider_agent (id) ON DELETE RESTRICT,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    manifest TEXT NOT NULL,
    diagnostics TEXT NOT NULL,
    source BYTEA NOT NULL,
    artifact BYTEA NOT NULL,
    created_by TEXT NOT NULL REFERENCES user_account (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT flow_version_version_key UNIQUE (provider_agent_id, version)
);
CREATE INDEX flow_version_digest ON flow_version (digest);
