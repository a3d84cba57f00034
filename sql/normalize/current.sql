-- `current`: the newest record of each post in `raw` (by the site's updated_at,
-- then the later ingestion, then the later record of the file), with when its file was taken
-- (`snapshots`), its age then, whether it is mature and in the reference, and its period.
CREATE OR REPLACE TEMP TABLE current AS
WITH newest AS (
    SELECT
        site, post_id, md5, sha512, created_at, updated_at, rating, score, up_votes,
        down_votes, favorites, is_deleted, source_file, ingested_at, record
    FROM raw
    QUALIFY row_number() OVER (
        PARTITION BY site, post_id
        ORDER BY updated_at DESC NULLS LAST, ingested_at DESC NULLS LAST, record DESC
    ) = 1
)
SELECT
    n.*,
    s.snapshot_at,
    date_diff('microsecond', n.created_at, s.snapshot_at) / 86400000000 AS age_days,
    age_days < $maturity_days AS immature,
    age_days >= $maturity_days AND NOT coalesce(n.is_deleted, false) AS in_reference,
    period_of(n.created_at, $months) AS period
FROM newest AS n
LEFT JOIN snapshots AS s USING (source_file);
