-- name: score_vs_popularity
-- description: Per site, how the active head's score agrees with popularity (Spearman, Pearson).
-- param: include_immature = false : also count posts too young for their norm_score to mean much
--
-- Spearman is the Pearson correlation of the ranks; tied values share their average rank (the
-- textbook definition), so a site with many equal norm_scores is not biased by tie order.
WITH pairs AS (
    SELECT site, aesthetic_score AS a, norm_score AS p
    FROM catalog
    WHERE aesthetic_score IS NOT NULL
        AND norm_score IS NOT NULL
        AND ($include_immature OR NOT coalesce(immature, false))
),
ranked AS (
    SELECT
        site,
        a,
        p,
        rank() OVER (PARTITION BY site ORDER BY a)
            + (count(*) OVER (PARTITION BY site, a) - 1) / 2 AS rank_a,
        rank() OVER (PARTITION BY site ORDER BY p)
            + (count(*) OVER (PARTITION BY site, p) - 1) / 2 AS rank_p
    FROM pairs
)
SELECT
    site,
    count(*) AS n,
    round(corr(rank_a, rank_p), 4) AS spearman,
    round(corr(a, p), 4) AS pearson,
    round(avg(a), 4) AS mean_aesthetic_score,
    round(avg(p), 4) AS mean_norm_score
FROM ranked
GROUP BY site
ORDER BY site;
