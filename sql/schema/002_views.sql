-- Posts with their score under the active head (null where not scored yet).
CREATE OR REPLACE VIEW catalog AS
SELECT
    p.*,
    s.score AS aesthetic_score,
    s.percentile AS aesthetic_percentile,
    s.head_version,
    s.scored_at
FROM posts AS p
LEFT JOIN scores AS s
    ON s.post_key = p.post_key
    AND s.head_version = (SELECT version FROM heads WHERE active LIMIT 1);

-- Per site and rating: posts, scored posts, and score quartiles under the active head.
CREATE OR REPLACE VIEW site_summary AS
SELECT
    site,
    rating,
    count(*) AS posts,
    count(aesthetic_score) AS scored,
    round(avg(aesthetic_score), 4) AS mean_score,
    round(quantile_cont(aesthetic_score, 0.25), 4) AS q25,
    round(quantile_cont(aesthetic_score, 0.5), 4) AS median,
    round(quantile_cont(aesthetic_score, 0.75), 4) AS q75,
    round(avg(norm_score), 4) AS mean_norm_score
FROM catalog
GROUP BY ALL
ORDER BY site, rating;

-- Per head: how many posts it scored, and whether it is active.
CREATE OR REPLACE VIEW head_summary AS
SELECT
    h.version,
    h.head_type,
    h.active,
    h.activated_at,
    h.registered_at,
    count(s.post_key) AS scored_posts,
    round(avg(s.score), 4) AS mean_score,
    max(s.scored_at) AS last_scored_at
FROM heads AS h
LEFT JOIN scores AS s ON s.head_version = h.version
GROUP BY ALL
ORDER BY h.registered_at;
