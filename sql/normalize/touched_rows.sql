-- An incremental run: every current row of the groups (site, rating, period) in `touched`:
-- the rows normalized_scores holds in the part files $parts, but those the winners replace,
-- and the winners themselves. The inputs only (and the canonical flag, which stays unless
-- an image of the winners' changes hands): cohorts and scores are worked out again.
CREATE OR REPLACE TEMP TABLE current AS
SELECT
    p.site, p.post_id, p.md5, p.sha512, p.created_at, p.updated_at, p.rating, p.score,
    p.up_votes, p.down_votes, p.favorites, p.is_deleted, p.source_file, p.ingested_at, p.record,
    p.snapshot_at, p.age_days, p.immature, p.in_reference, p.period, p.is_canonical
FROM read_parquet($parts, union_by_name = true) AS p
SEMI JOIN touched AS t
    ON t.site = p.site AND t.rating IS NOT DISTINCT FROM p.rating
    AND t.period IS NOT DISTINCT FROM p.period
ANTI JOIN winners AS w ON w.site = p.site AND w.post_id = p.post_id
UNION ALL BY NAME
SELECT w.*
FROM winners AS w
SEMI JOIN touched AS t
    ON t.site = w.site AND t.rating IS NOT DISTINCT FROM w.rating
    AND t.period IS NOT DISTINCT FROM w.period;
