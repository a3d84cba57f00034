-- Keep the scores of the active head and of the $keep most recently activated other heads.
-- A head whose scores go is scored from scratch if it is activated again.
CREATE OR REPLACE TEMP TABLE dropped_heads AS
SELECT version FROM heads
WHERE version NOT IN (
    SELECT version FROM heads
    ORDER BY active DESC, activated_at DESC NULLS LAST, registered_at DESC
    LIMIT $keep + 1
);

DELETE FROM scores WHERE head_version IN (SELECT version FROM dropped_heads);

DELETE FROM head_shards WHERE head_version IN (SELECT version FROM dropped_heads);

DELETE FROM score_reference WHERE head_version IN (SELECT version FROM dropped_heads);

UPDATE heads SET scored_through = NULL WHERE version IN (SELECT version FROM dropped_heads);

DROP TABLE dropped_heads;
