-- The buyer's secrets for one agent (Langflow global variables such as
-- TAVILY_API_KEY), sealed with the operator's --secrets-key (AES-256-GCM,
-- bound to their resource and name): the database never holds a value.
-- sealed: `v1.<kid>.<hex of nonce, ciphertext and tag>`.
-- hosts: JSON array of the host patterns nodes may send the value to in a
-- request header (none: only the host's own uses, such as a model key);
-- bound into the seal, so changing it here makes the value unopenable.
CREATE TABLE agent_secret (
    resource_id TEXT NOT NULL REFERENCES resource (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    hosts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (resource_id, name)
);
