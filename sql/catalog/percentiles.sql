-- Each score's percentile within the catalog under the same head (0 lowest, 1 highest).
UPDATE scores SET percentile = ranked.percentile
FROM (
    SELECT post_key, percent_rank() OVER (ORDER BY score) AS percentile
    FROM scores WHERE head_version = $head
) AS ranked
WHERE scores.head_version = $head AND scores.post_key = ranked.post_key;
