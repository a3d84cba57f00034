-- An incremental run: of the posts in `raw` (the new raw files), those whose record there is
-- newer than the one normalized_scores holds (`winners`), with the derived columns of
-- current.sql, and the rows they replace (`replaced`). Equal records prefer the new file.
CREATE OR REPLACE TEMP TABLE incoming AS
SELECT
    site, post_id, md5, sha512, created_at, updated_at, rating, score, up_votes,
    down_votes, favorites, is_deleted, source_file, ingested_at, record
FROM raw
QUALIFY row_number() OVER (
    PARTITION BY site, post_id
    ORDER BY updated_at DESC NULLS LAST, ingested_at DESC NULLS LAST, record DESC
) = 1;

CREATE OR REPLACE TEMP TABLE replaced AS
SELECT p.*
FROM read_parquet($parts, union_by_name = true) AS p
SEMI JOIN incoming AS i ON i.site = p.site AND i.post_id = p.post_id;

CREATE OR REPLACE TEMP TABLE winners AS
WITH contest AS (
    SELECT *, true AS is_new FROM incoming
    UNION ALL BY NAME
    SELECT
        site, post_id, md5, sha512, created_at, updated_at, rating, score, up_votes,
        down_votes, favorites, is_deleted, source_file, ingested_at, record, false AS is_new
    FROM replaced
),
newest AS (
    SELECT * EXCLUDE (is_new)
    FROM contest
    QUALIFY row_number() OVER (
        PARTITION BY site, post_id
        ORDER BY updated_at DESC NULLS LAST, ingested_at DESC NULLS LAST, record DESC,
            is_new DESC
    ) = 1 AND is_new
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

DELETE FROM replaced WHERE NOT EXISTS (
    SELECT 1 FROM winners AS w WHERE w.site = replaced.site AND w.post_id = replaced.post_id
);

DROP TABLE incoming;
