-- `newest`: of each post in the raw_posts files $files, the newest record (by the site's
-- updated_at, then the later ingestion, then the later record of the file).
CREATE OR REPLACE TEMP TABLE newest AS
SELECT
    site, post_id, md5, sha512, created_at, updated_at, rating, score, up_votes,
    down_votes, favorites, is_deleted, source_file, ingested_at, record
FROM read_parquet($files, union_by_name = true)
QUALIFY row_number() OVER (
    PARTITION BY site, post_id
    ORDER BY updated_at DESC NULLS LAST, ingested_at DESC NULLS LAST, record DESC
) = 1;
