-- Mirror the head registry (`registry_heads`, registered by the writer): new heads are added,
-- and the active flag follows the registry's active head.
INSERT INTO heads BY NAME
SELECT r.version, r.head_type, r.card, false AS active, NULL AS activated_at, now() AS registered_at
FROM registry_heads AS r
WHERE r.version NOT IN (SELECT version FROM heads);
-- activated_at is the latest activation: a head made active again counts as the most recent
-- (retention and compare_heads order heads by it). Right-hand sides see the old row.
UPDATE heads SET
    active = (version = $active),
    activated_at = CASE WHEN version = $active AND NOT active THEN now() ELSE activated_at END;
