-- The posts an export selects whose added_seq lies in one of the ranges [$los[i], $his[i]],
-- in export order: what an incremental export builds again. The same selection as
-- caption_selection (macros.sql) and select.sql, worked out only for the images of the posts
-- in the ranges: one post per image is picked among every post of the image, wherever its
-- added_seq lies, so each range gets the posts a whole export would give it. Narrow columns
-- first; the tags only of the posts picked.
WITH ranges AS (
    SELECT unnest($los::BIGINT[]) AS lo, unnest($his::BIGINT[]) AS hi
),
shown AS MATERIALIZED (
    SELECT DISTINCT p.image_key
    FROM posts AS p
    JOIN ranges AS r ON p.added_seq BETWEEN r.lo AND r.hi
),
-- Each side narrowed to the images shown before they are joined (not the catalog joined with
-- its scores first).
candidates AS MATERIALIZED (
    SELECT
        p.rowid AS row_id, p.post_key, p.image_key, p.site, p.post_id, p.rating,
        p.is_canonical, p.added_seq
    FROM posts AS p
    WHERE p.image_key IN (SELECT image_key FROM shown)
        AND NOT coalesce(p.is_deleted, false)
        AND list_contains($ratings, p.rating)
        AND (len($sites) = 0 OR list_contains($sites, p.site))
),
head_scores AS MATERIALIZED (
    SELECT post_key, score, percentile
    FROM scores
    WHERE head_version = $head AND image_key IN (SELECT image_key FROM shown)
),
scored AS (
    SELECT c.*, s.score, s.percentile
    FROM candidates AS c
    JOIN head_scores AS s ON s.post_key = c.post_key
),
bucketed AS (
    SELECT
        c.*,
        coalesce(
            k.bucket,
            (SELECT min(bucket) FROM calibrations WHERE head_version = $head)
        ) AS bucket
    FROM scored AS c
    ASOF LEFT JOIN (SELECT * FROM calibrations WHERE head_version = $head) AS k
        ON c.score >= k.min_score
),
picked AS (
    SELECT row_id, score, percentile, bucket
    FROM bucketed
    WHERE bucket >= $min_bucket
    QUALIFY row_number() OVER (
        PARTITION BY image_key ORDER BY is_canonical DESC NULLS LAST, site, post_id
    ) = 1
        AND EXISTS (SELECT 1 FROM ranges AS r WHERE added_seq BETWEEN r.lo AND r.hi)
)
SELECT
    p.post_key, p.site, p.post_id, p.md5, p.image_key, p.rating, p.width, p.height,
    p.file_ext, p.tags, p.character_tags, p.copyright_tags, p.artist_tags, p.species_tags,
    p.meta_tags, k.score, k.bucket, p.added_seq,
    p.norm_score AS popularity, k.percentile, year(timezone('UTC', p.created_at))::DOUBLE AS year
FROM posts AS p
JOIN picked AS k ON k.row_id = p.rowid
ORDER BY p.added_seq, p.site, p.post_id;
