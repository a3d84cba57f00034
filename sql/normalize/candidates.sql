-- An incremental run: of the posts in `newest` (the new raw files' records), keep those whose
-- record is newer than the one the parts $parts hold (ordered as newest.sql orders them;
-- equal records prefer the new file), and the part rows they replace (`replaced`).
CREATE OR REPLACE TEMP TABLE replaced AS
SELECT p.*
FROM read_parquet($parts, union_by_name = true) AS p
SEMI JOIN newest AS n ON n.site = p.site AND n.post_id = p.post_id;

CREATE OR REPLACE TEMP TABLE contest AS
SELECT * EXCLUDE (is_new)
FROM (
    SELECT *, true AS is_new FROM newest
    UNION ALL BY NAME
    SELECT
        site, post_id, md5, sha512, created_at, updated_at, rating, score, up_votes,
        down_votes, favorites, is_deleted, source_file, ingested_at, record, false AS is_new
    FROM replaced
)
QUALIFY row_number() OVER (
    PARTITION BY site, post_id
    ORDER BY updated_at DESC NULLS LAST, ingested_at DESC NULLS LAST, record DESC, is_new DESC
) = 1 AND is_new;

DROP TABLE newest;

ALTER TABLE contest RENAME TO newest;

DELETE FROM replaced
WHERE NOT EXISTS (
    SELECT 1 FROM newest AS n WHERE n.site = replaced.site AND n.post_id = replaced.post_id
);
