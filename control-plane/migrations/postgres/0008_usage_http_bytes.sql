-- Bytes each run's `http` capability received (pages, API answers, search
-- results). Records from runtime hosts that predate the field count zero.
ALTER TABLE usage_record ADD COLUMN http_bytes BIGINT NOT NULL DEFAULT 0;
