-- Which flow version a review covers. An unpinned offering used to hand each
-- new order the agent's latest version, so a version imported after the
-- operators' approval reached buyers unreviewed.
-- review_flow_version_id: what the pending review is about (the pinned
-- version, or the agent's latest when the offering went up for review).
-- approved_flow_version_id: what the last approval covered; new orders get it.
ALTER TABLE offering ADD COLUMN review_flow_version_id TEXT REFERENCES flow_version (id) ON DELETE RESTRICT;
ALTER TABLE offering ADD COLUMN approved_flow_version_id TEXT REFERENCES flow_version (id) ON DELETE RESTRICT;
-- Offerings reviewed before this column keep what they ran until now: the
-- pinned version, or the agent's latest.
UPDATE offering SET approved_flow_version_id = COALESCE(flow_version_id,
    (SELECT v.id FROM flow_version v WHERE v.provider_agent_id = offering.provider_agent_id
     ORDER BY v.version DESC LIMIT 1))
WHERE state <> 'draft';
UPDATE offering SET review_flow_version_id = COALESCE(flow_version_id,
    (SELECT v.id FROM flow_version v WHERE v.provider_agent_id = offering.provider_agent_id
     ORDER BY v.version DESC LIMIT 1))
WHERE state = 'pending_review';
