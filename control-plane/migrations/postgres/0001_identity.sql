-- Identity: accounts, sessions, organisations and their members.
-- Timestamps are milliseconds since the Unix epoch (UTC), the same on
-- SQLite and PostgreSQL. Flags are 0/1 integers (the Any driver has no
-- SQLite boolean).

CREATE TABLE user_account (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_staff BIGINT NOT NULL DEFAULT 0 CHECK (is_staff IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT user_account_email_key UNIQUE (email)
);

CREATE TABLE session_token (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX session_token_user ON session_token (user_id);

CREATE TABLE organization (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    provider_status TEXT NOT NULL DEFAULT 'none'
        CHECK (provider_status IN ('none', 'pending', 'approved', 'rejected')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT organization_name_key UNIQUE (name)
);

CREATE TABLE membership (
    organization_id TEXT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX membership_user ON membership (user_id);
