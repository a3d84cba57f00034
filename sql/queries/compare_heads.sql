-- name: compare_heads
-- description: Two heads side by side: rank correlation, and the posts that moved the most.
-- param: a = '' : head version ('' = the active head)
-- param: b = '' : head version ('' = the most recently activated other head)
-- param: limit = 50 : movers to show
--
-- One row per mover, over the posts both heads scored; n, spearman and
-- mean_abs_percentile_change describe all of those posts and repeat on every row.
-- percentile_change = percentile_b - percentile_a (each percentile within its own head).
-- "Most recently activated" falls back on the most recently registered among heads never
-- activated.
WITH pair AS (
    SELECT
        coalesce(nullif($a, ''), (SELECT version FROM heads WHERE active LIMIT 1)) AS head_a,
        coalesce(
            nullif($b, ''),
            (
                SELECT version
                FROM heads
                WHERE version IS DISTINCT FROM coalesce(
                    nullif($a, ''), (SELECT version FROM heads WHERE active LIMIT 1)
                )
                ORDER BY activated_at DESC NULLS LAST, registered_at DESC NULLS LAST, version
                LIMIT 1
            )
        ) AS head_b
),
both_scored AS (
    SELECT
        x.post_key,
        x.score AS score_a,
        y.score AS score_b,
        x.percentile AS percentile_a,
        y.percentile AS percentile_b
    FROM pair
    JOIN scores AS x ON x.head_version = pair.head_a
    JOIN scores AS y ON y.head_version = pair.head_b AND y.post_key = x.post_key
),
ranked AS (
    SELECT
        *,
        rank() OVER (ORDER BY score_a) + (count(*) OVER (PARTITION BY score_a) - 1) / 2 AS rank_a,
        rank() OVER (ORDER BY score_b) + (count(*) OVER (PARTITION BY score_b) - 1) / 2 AS rank_b
    FROM both_scored
),
summary AS (
    SELECT
        count(*) AS n,
        round(corr(rank_a, rank_b), 4) AS spearman,
        round(avg(abs(percentile_b - percentile_a)), 4) AS mean_abs_percentile_change
    FROM ranked
)
SELECT
    r.post_key,
    p.site,
    p.rating,
    pair.head_a,
    pair.head_b,
    round(r.score_a, 4) AS score_a,
    round(r.score_b, 4) AS score_b,
    round(r.percentile_a, 4) AS percentile_a,
    round(r.percentile_b, 4) AS percentile_b,
    round(r.percentile_b - r.percentile_a, 4) AS percentile_change,
    summary.n,
    summary.spearman,
    summary.mean_abs_percentile_change
FROM ranked AS r
CROSS JOIN pair
CROSS JOIN summary
LEFT JOIN posts AS p ON p.post_key = r.post_key
ORDER BY abs(r.percentile_b - r.percentile_a) DESC, r.post_key
-- Evaluated even when the heads share no post, so a head that does not exist is an error
-- rather than an empty answer.
LIMIT (
    SELECT CASE
        WHEN head_a IS NULL THEN error('no head to compare: the catalog has no active head')
        WHEN head_b IS NULL THEN error('no second head to compare with ' || head_a)
        WHEN head_a NOT IN (SELECT version FROM heads)
            THEN error('unknown head ''' || head_a || ''' (a)')
        WHEN head_b NOT IN (SELECT version FROM heads)
            THEN error('unknown head ''' || head_b || ''' (b)')
        ELSE $limit
    END
    FROM pair
);
