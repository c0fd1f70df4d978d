-- A client's key for placing an order once, however often it retries the
-- request (`Idempotency-Key`), unique within the ordering organisation.
ALTER TABLE customer_order ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX customer_order_idempotency ON customer_order (organization_id, idempotency_key);
