-- Marketplace catalog: operator-managed categories, the offerings providers
-- sell (one provider agent each) and their price plans. Money is in integer
-- minor units of the plan's currency; NULL allowances mean unlimited.

CREATE TABLE category (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT category_name_key UNIQUE (name),
    CONSTRAINT category_slug_key UNIQUE (slug)
);

CREATE TABLE offering (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE RESTRICT,
    provider_agent_id TEXT NOT NULL REFERENCES provider_agent (id) ON DELETE RESTRICT,
    -- NULL: the agent's latest flow version when an order is provisioned.
    flow_version_id TEXT REFERENCES flow_version (id) ON DELETE RESTRICT,
    category_id TEXT REFERENCES category (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    requires_approval INTEGER NOT NULL DEFAULT 0 CHECK (requires_approval IN (0, 1)),
    state TEXT NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft', 'pending_review', 'active', 'paused', 'archived')),
    -- Why an operator sent it back to draft.
    review_note TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT offering_name_key UNIQUE (organization_id, name)
);
CREATE INDEX offering_state ON offering (state, category_id);
CREATE INDEX offering_organization ON offering (organization_id);

CREATE TABLE plan (
    id TEXT PRIMARY KEY NOT NULL,
    offering_id TEXT NOT NULL REFERENCES offering (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    fixed_monthly INTEGER NOT NULL CHECK (fixed_monthly >= 0),
    per_run INTEGER NOT NULL CHECK (per_run >= 0),
    per_1k_tokens INTEGER NOT NULL CHECK (per_1k_tokens >= 0),
    per_million_fuel INTEGER NOT NULL CHECK (per_million_fuel >= 0),
    runs_per_month INTEGER,
    tokens_per_month INTEGER,
    fuel_per_month INTEGER,
    requests_per_minute INTEGER,
    archived_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX plan_offering ON plan (offering_id);
