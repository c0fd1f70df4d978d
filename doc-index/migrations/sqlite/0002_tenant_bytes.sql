-- What each tenant's chunks hold, in bytes of text and vectors, kept by
-- triggers, so that the index refuses chunks past a tenant's quota without
-- summing its rows (whose texts live in overflow pages).
CREATE TABLE doc_tenant_bytes (
    tenant TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL
);

INSERT INTO doc_tenant_bytes (tenant, bytes)
SELECT tenant, SUM(LENGTH(CAST(text AS BLOB)) + COALESCE(LENGTH(embedding), 0)) FROM doc_chunk GROUP BY tenant;

CREATE TRIGGER doc_chunk_bytes_insert AFTER INSERT ON doc_chunk BEGIN
    INSERT INTO doc_tenant_bytes (tenant, bytes)
    VALUES (new.tenant, LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0))
    ON CONFLICT (tenant) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER doc_chunk_bytes_delete AFTER DELETE ON doc_chunk BEGIN
    UPDATE doc_tenant_bytes
    SET bytes = bytes - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
    WHERE tenant = old.tenant;
END;

CREATE TRIGGER doc_chunk_bytes_update AFTER UPDATE OF text, embedding ON doc_chunk BEGIN
    UPDATE doc_tenant_bytes
    SET bytes = bytes - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
        + (LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0))
    WHERE tenant = new.tenant;
END;
