-- Keep the scores of the active head and of the $keep most recently activated other heads.
DELETE FROM scores
WHERE head_version NOT IN (
    SELECT version FROM heads
    ORDER BY active DESC, activated_at DESC NULLS LAST, registered_at DESC
    LIMIT $keep + 1
);
