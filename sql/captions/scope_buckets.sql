-- Images of a calibration scope per bucket under the head's stored cut-points, now.
SELECT
    coalesce(
        k.bucket,
        (SELECT min(bucket) FROM calibrations WHERE head_version = $head)
    ) AS bucket,
    count(*) AS images
FROM caption_scope($head, $sites, $ratings) AS s
ASOF LEFT JOIN (SELECT * FROM calibrations WHERE head_version = $head) AS k
    ON s.score >= k.min_score
GROUP BY ALL
ORDER BY bucket;
