-- The rows of one part: `result`'s of the site $site and the period $period.
SELECT *
FROM result
WHERE site = $site AND period IS NOT DISTINCT FROM $period
ORDER BY post_id;
