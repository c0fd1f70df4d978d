-- The seller's secrets for one provider agent (Langflow global variables
-- such as TAVILY_API_KEY that the seller pays for), given to every buyer's
-- agent of it; a buyer's secret of the same name (agent_secret) takes its
-- place. Sealed as agent_secret's are, bound to the provider agent (as
-- `provider-agent/<id>`), the name and the hosts.
CREATE TABLE seller_secret (
    provider_agent_id TEXT NOT NULL REFERENCES provider_agent (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    hosts TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (provider_agent_id, name)
);
