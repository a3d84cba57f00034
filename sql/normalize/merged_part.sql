-- An incremental run: one part again: its rows ($part) less those `result` or the winners
-- replace, and `result`'s of the site $site and the period $period.
SELECT p.*
FROM read_parquet($part) AS p
ANTI JOIN result AS r ON r.site = p.site AND r.post_id = p.post_id
ANTI JOIN winners AS w ON w.site = p.site AND w.post_id = p.post_id
UNION ALL BY NAME
SELECT * FROM result
WHERE site = $site AND period IS NOT DISTINCT FROM $period
ORDER BY post_id;
