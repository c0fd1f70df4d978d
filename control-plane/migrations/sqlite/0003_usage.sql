-- The usage ledger: one row per run, counted once by idempotency key.
CREATE TABLE usage_record (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    subscription TEXT,
    flow_version TEXT NOT NULL,
    fuel INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    wall_micros INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX usage_record_flow_version ON usage_record (flow_version);
CREATE INDEX usage_record_tenant ON usage_record (tenant, started_at_ms);
