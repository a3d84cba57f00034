-- The rows of `current` in the groups (site, rating, period) of `batch`.
SELECT c.*
FROM current AS c
SEMI JOIN batch AS b
    ON b.site = c.site AND b.rating IS NOT DISTINCT FROM c.rating
    AND b.period IS NOT DISTINCT FROM c.period;
