-- An incremental run: the winners' whole raw rows ($files: the new raw files) with their
-- normalized values from `result`: what the catalog writes in place of its rows.
SELECT
    a.*,
    r.image_key, r.norm_score, r.is_canonical, r.immature
FROM read_parquet($files, union_by_name = true) AS a
JOIN winners AS w
    ON w.site = a.site AND w.post_id = a.post_id AND w.source_file = a.source_file
    AND w.record = a.record
JOIN result AS r ON r.site = a.site AND r.post_id = a.post_id;
