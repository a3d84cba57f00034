-- name: tag_scores
-- description: Mean aesthetic score per tag under the active head, best or worst first.
-- param: min_posts = 20 : leave out tags on fewer scored posts
-- param: order = 'top' : 'top' (highest mean first) or 'bottom'
-- param: limit = 50 : tags to show
-- param: site = '' : only this site ('' = all)
--
-- A tag listed twice on one post counts once (list_distinct).
WITH tagged AS (
    SELECT
        unnest(list_distinct(tags)) AS tag,
        site,
        aesthetic_score,
        aesthetic_percentile,
        norm_score
    FROM catalog
    WHERE aesthetic_score IS NOT NULL AND ($site = '' OR site = $site)
)
SELECT
    tag,
    count(*) AS posts,
    count(DISTINCT site) AS sites,
    round(avg(aesthetic_score), 4) AS mean_score,
    round(avg(aesthetic_percentile), 4) AS mean_percentile,
    round(avg(norm_score), 4) AS mean_norm_score
FROM tagged
GROUP BY tag
HAVING count(*) >= $min_posts
ORDER BY CASE WHEN $order = 'bottom' THEN 1 ELSE -1 END * avg(aesthetic_score), tag
LIMIT (
    SELECT CASE
        WHEN $order IN ('top', 'bottom') THEN $limit
        ELSE error('order must be top or bottom, not ''' || $order || '''')
    END
);
