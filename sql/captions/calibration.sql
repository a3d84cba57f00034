-- A head's stored cut-points, one row per bucket.
SELECT bucket, min_score, max_score, created_at
FROM calibrations
WHERE head_version = $head
ORDER BY bucket;
