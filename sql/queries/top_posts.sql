-- name: top_posts
-- description: The best-scored posts of each site under the active head.
-- param: limit = 20 : posts per site
-- param: site = '' : only this site ('' = all)
--
-- Deleted posts are left out: they are the ones nobody can fetch any more. Ties in score are
-- broken by post_key, so the same catalog always gives the same list.
SELECT
    site,
    row_number() OVER (PARTITION BY site ORDER BY aesthetic_score DESC, post_key) AS site_rank,
    post_key,
    post_id,
    rating,
    round(aesthetic_score, 4) AS aesthetic_score,
    round(aesthetic_percentile, 4) AS aesthetic_percentile,
    round(norm_score, 4) AS norm_score,
    score,
    favorites,
    head_version
FROM catalog
WHERE aesthetic_score IS NOT NULL
    AND NOT coalesce(is_deleted, false)
    AND ($site = '' OR site = $site)
QUALIFY site_rank <= $limit
ORDER BY site, site_rank;
