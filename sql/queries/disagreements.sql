-- name: disagreements
-- description: Posts whose aesthetic percentile and popularity (norm_score) disagree most.
-- param: limit = 50 : posts to show
-- param: direction = 'both' : 'underrated' (scores above its popularity), 'overrated', or 'both'
-- param: site = '' : only this site ('' = all)
--
-- gap = aesthetic_percentile - norm_score: both lie in [0, 1], so a gap near +1 is a post the
-- head rates highly that few people liked, and near -1 the reverse. Immature posts (too young
-- for their norm_score to mean much yet) and deleted posts are left out.
WITH args AS (
    -- Filtering on this checked value, not on $direction itself, keeps DuckDB from folding a
    -- mistyped direction into an always-false filter: it is an error, not an empty answer.
    SELECT CASE
        WHEN $direction IN ('both', 'underrated', 'overrated') THEN $direction
        ELSE error('direction must be both, underrated or overrated, not ''' || $direction || '''')
    END AS direction
)
SELECT
    c.post_key,
    c.site,
    c.rating,
    round(c.aesthetic_percentile, 4) AS aesthetic_percentile,
    round(c.norm_score, 4) AS norm_score,
    round(c.aesthetic_percentile - c.norm_score, 4) AS gap,
    CASE WHEN c.aesthetic_percentile >= c.norm_score THEN 'underrated' ELSE 'overrated' END
        AS verdict,
    round(c.aesthetic_score, 4) AS aesthetic_score,
    c.score,
    c.favorites
FROM catalog AS c
CROSS JOIN args
WHERE c.aesthetic_percentile IS NOT NULL
    AND c.norm_score IS NOT NULL
    AND NOT coalesce(c.immature, false)
    AND NOT coalesce(c.is_deleted, false)
    AND ($site = '' OR c.site = $site)
    AND (
        args.direction = 'both'
        OR (args.direction = 'underrated' AND c.aesthetic_percentile > c.norm_score)
        OR (args.direction = 'overrated' AND c.aesthetic_percentile < c.norm_score)
    )
ORDER BY abs(c.aesthetic_percentile - c.norm_score) DESC, c.post_key
LIMIT $limit;
