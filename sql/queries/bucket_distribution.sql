-- name: bucket_distribution
-- description: Scored posts per score bucket (score_1 .. score_9), by site and rating.
--
-- A post's bucket comes from the active head's cut-points in `calibrations` when the head has
-- any: the bucket whose min_score is the largest one at or below the post's score (an ASOF
-- join, so a gap or overlap between cut-points still gives every score exactly one bucket;
-- a score below every cut-point is bucket 1's). A head not calibrated yet falls back on the
-- percentile: nine equal bands, bucket = 1 + floor(percentile * 9) clipped to 1..9 (so the
-- buckets hold about a ninth of the catalog each). `bucket_source` says which was used.
WITH scored AS (
    SELECT post_key, site, rating, head_version, aesthetic_score, aesthetic_percentile
    FROM catalog
    WHERE aesthetic_score IS NOT NULL
),
calibrated AS (
    SELECT count(*) > 0 AS yes
    FROM calibrations
    WHERE head_version = (SELECT version FROM heads WHERE active LIMIT 1)
),
bucketed AS (
    SELECT
        s.site,
        s.rating,
        CASE
            WHEN k.yes THEN coalesce(
                c.bucket,
                (SELECT min(bucket) FROM calibrations WHERE head_version = s.head_version)
            )
            ELSE 1 + least(greatest(floor(s.aesthetic_percentile * 9), 0), 8)::INTEGER
        END AS bucket,
        CASE WHEN k.yes THEN 'calibration' ELSE 'percentile' END AS bucket_source
    FROM scored AS s
    CROSS JOIN calibrated AS k
    ASOF LEFT JOIN calibrations AS c
        ON c.head_version = s.head_version AND s.aesthetic_score >= c.min_score
)
SELECT
    site,
    rating,
    count(*) AS scored,
    count(*) FILTER (WHERE bucket = 1) AS score_1,
    count(*) FILTER (WHERE bucket = 2) AS score_2,
    count(*) FILTER (WHERE bucket = 3) AS score_3,
    count(*) FILTER (WHERE bucket = 4) AS score_4,
    count(*) FILTER (WHERE bucket = 5) AS score_5,
    count(*) FILTER (WHERE bucket = 6) AS score_6,
    count(*) FILTER (WHERE bucket = 7) AS score_7,
    count(*) FILTER (WHERE bucket = 8) AS score_8,
    count(*) FILTER (WHERE bucket = 9) AS score_9,
    any_value(bucket_source) AS bucket_source
FROM bucketed
GROUP BY site, rating
ORDER BY site, rating;
