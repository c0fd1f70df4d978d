-- 1 once a paused offering, or one of its plans, changed: resuming it then
-- goes back to the operators' review instead of straight to active.
ALTER TABLE offering ADD COLUMN changed_since_review BIGINT NOT NULL DEFAULT 0 CHECK (changed_since_review IN (0, 1));
