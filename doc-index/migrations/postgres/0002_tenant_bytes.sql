-- What each tenant's chunks hold, in bytes of text and vectors, kept by a
-- trigger, so that the index refuses chunks past a tenant's quota without
-- summing its rows.
CREATE TABLE doc_tenant_bytes (
    tenant TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL
);

INSERT INTO doc_tenant_bytes (tenant, bytes)
SELECT tenant, SUM(OCTET_LENGTH(text) + COALESCE(OCTET_LENGTH(embedding), 0)) FROM doc_chunk GROUP BY tenant;

CREATE FUNCTION doc_chunk_bytes() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE doc_tenant_bytes
        SET bytes = bytes - (OCTET_LENGTH(OLD.text) + COALESCE(OCTET_LENGTH(OLD.embedding), 0))
        WHERE tenant = OLD.tenant;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO doc_tenant_bytes (tenant, bytes)
        VALUES (NEW.tenant, OCTET_LENGTH(NEW.text) + COALESCE(OCTET_LENGTH(NEW.embedding), 0))
        ON CONFLICT (tenant) DO UPDATE SET bytes = doc_tenant_bytes.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER doc_chunk_bytes AFTER INSERT OR DELETE OR UPDATE OF text, embedding ON doc_chunk
FOR EACH ROW EXECUTE FUNCTION doc_chunk_bytes();
