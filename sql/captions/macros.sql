-- Table macros the captions stage queries through (temporary: created on each connection,
-- read-only ones included). A post's bucket is read as sql/queries/bucket_distribution.sql
-- reads it: the bucket whose min_score is the largest one at or below the score (ASOF), and
-- the head's lowest bucket for a score below every min_score.

-- The images scored under `head` within a calibration scope (empty lists: every site or
-- rating), one row each; deleted posts are left out, as the exports leave them out.
CREATE OR REPLACE TEMP MACRO caption_scope(head, sites, ratings) AS TABLE
SELECT image_key, min(aesthetic_score) AS score
FROM catalog
WHERE head_version = head
    AND NOT coalesce(is_deleted, false)
    AND (len(sites) = 0 OR list_contains(sites, site))
    AND (len(ratings) = 0 OR list_contains(ratings, rating))
GROUP BY image_key;

-- Posts scored under `head` (the active head: the catalog view holds its scores), with
-- their bucket under the head's stored calibration (null when it has none).
CREATE OR REPLACE TEMP MACRO caption_bucketed(head) AS TABLE
SELECT
    c.*,
    coalesce(
        k.bucket,
        (SELECT min(bucket) FROM calibrations WHERE head_version = head)
    ) AS bucket
FROM catalog AS c
ASOF LEFT JOIN calibrations AS k
    ON k.head_version = c.head_version AND c.aesthetic_score >= k.min_score
WHERE c.head_version = head;

-- What an export holds: live posts in a bucket at or above `min_bucket`, of the given
-- ratings and sites (empty: every site), one post per image (the canonical one where it
-- passes the filter, else the first by site and post id).
CREATE OR REPLACE TEMP MACRO caption_selection(head, min_bucket, ratings, sites) AS TABLE
SELECT *
FROM caption_bucketed(head)
WHERE bucket >= min_bucket
    AND NOT coalesce(is_deleted, false)
    AND list_contains(ratings, rating)
    AND (len(sites) = 0 OR list_contains(sites, site))
QUALIFY row_number() OVER (
    PARTITION BY image_key ORDER BY is_canonical DESC NULLS LAST, site, post_id
) = 1;
