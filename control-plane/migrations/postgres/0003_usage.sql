-- The usage ledger: one row per run, counted once by idempotency key.
CREATE TABLE usage_record (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    subscription TEXT,
    flow_version TEXT NOT NULL,
    fuel BIGINT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    wall_micros BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX usage_record_flow_version ON usage_record (flow_version);
CREATE INDEX usage_record_tenant ON usage_record (tenant, started_at_ms);
