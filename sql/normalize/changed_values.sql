-- An incremental run: rows of `result` whose record did not change (not a winner) but whose
-- normalized values did, against the parts $parts they are in now.
SELECT r.site, r.post_id, r.norm_score, r.is_canonical, r.immature
FROM result AS r
JOIN read_parquet($parts, union_by_name = true) AS p
    ON p.site = r.site AND p.post_id = r.post_id
ANTI JOIN winners AS w ON w.site = r.site AND w.post_id = r.post_id
WHERE r.norm_score IS DISTINCT FROM p.norm_score
    OR r.is_canonical IS DISTINCT FROM p.is_canonical
    OR r.immature IS DISTINCT FROM p.immature;
