-- Store a head's cut-points from the registered frame `new_calibration`.
INSERT INTO calibrations (head_version, bucket, min_score, max_score, created_at)
SELECT $head, bucket, min_score, max_score, $created_at
FROM new_calibration;
