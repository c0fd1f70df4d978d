-- Buying: orders and their state machine, the resources (subscriptions)
-- they provision, the buyers' agent configs, per-tenant quotas, platform
-- settings, durable background jobs and the runtime change feed.

CREATE TABLE customer_order (
    id TEXT PRIMARY KEY NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plan (id) ON DELETE RESTRICT,
    offering_id TEXT NOT NULL REFERENCES offering (id) ON DELETE RESTRICT,
    -- The consumer (buyer) organisation.
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    provider_organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    state TEXT NOT NULL CHECK (state IN ('pending_consumer', 'pending_provider', 'executing', 'done',
        'rejected', 'canceled', 'erred')),
    created_by TEXT NOT NULL REFERENCES user_account (id),
    -- Why it was rejected or canceled.
    reason TEXT,
    -- The last provisioning error.
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX customer_order_consumer ON customer_order (organization_id, created_at);
CREATE INDEX customer_order_provider ON customer_order (provider_organization_id, created_at);

CREATE TABLE resource (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES customer_order (id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    offering_id TEXT NOT NULL REFERENCES offering (id) ON DELETE RESTRICT,
    plan_id TEXT NOT NULL REFERENCES plan (id) ON DELETE RESTRICT,
    flow_version_id TEXT NOT NULL REFERENCES flow_version (id) ON DELETE RESTRICT,
    state TEXT NOT NULL CHECK (state IN ('creating', 'ok', 'updating', 'terminating', 'terminated', 'erred')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- One resource per order, however often its job runs.
    CONSTRAINT resource_order_key UNIQUE (order_id)
);
CREATE INDEX resource_organization ON resource (organization_id);
CREATE INDEX resource_offering ON resource (offering_id);

CREATE TABLE customer_agent_config (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resource (id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    -- JSON: persona (or null), branding, widget.
    persona TEXT NOT NULL,
    branding TEXT NOT NULL,
    widget TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT customer_agent_config_resource_key UNIQUE (resource_id)
);
CREATE INDEX customer_agent_config_organization ON customer_agent_config (organization_id);

-- Set by operators; NULL is the runtime host's default.
CREATE TABLE quota (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    runs_per_month BIGINT,
    fuel_per_month BIGINT,
    tokens_per_month BIGINT,
    requests_per_minute BIGINT,
    memory_bytes_per_run BIGINT,
    deadline_ms BIGINT,
    fuel_per_run BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE platform_settings (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    commission_bps BIGINT NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000),
    updated_at BIGINT NOT NULL
);
INSERT INTO platform_settings (id, commission_bps, updated_at) VALUES (1, 0, 0);

CREATE TABLE job (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX job_due ON job (state, run_after);

-- What runtime hosts must apply, in order. `seq` only grows.
CREATE TABLE runtime_change (
    seq BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
-- One row every feed writer updates first: writers queue on its lock, so
-- changes commit in `seq` order and a reader never skips a late commit.
CREATE TABLE runtime_change_lock (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    writes BIGINT NOT NULL
);
INSERT INTO runtime_change_lock (id, writes) VALUES (1, 0);
