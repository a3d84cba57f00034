-- What the catalog's checks judge, under the active head $head, as one row. $shards globs the
-- active backbone's embedding shards: a post whose image is embedded must be scored.
SELECT
    (SELECT count(*) FROM posts AS p
        WHERE p.image_key IN (SELECT image_key FROM read_parquet($shards))
          AND NOT EXISTS (SELECT 1 FROM scores AS s
                          WHERE s.post_key = p.post_key AND s.head_version = $head))
        AS embedded_posts_unscored,
    (SELECT count(*) FROM scores WHERE score < 0 OR score > 1 OR isnan(score)) AS scores_out_of_range,
    (SELECT count(*) FROM (SELECT post_key, head_version FROM scores
                           GROUP BY ALL HAVING count(*) > 1)) AS duplicate_scores,
    (SELECT count(*) FROM (
        SELECT percentile < lag(percentile) OVER (ORDER BY score, percentile) AS descends
        FROM scores WHERE head_version = $head) WHERE descends) AS percentile_inversions,
    (SELECT count(*) FROM scores WHERE head_version = $head
        AND (percentile IS NULL OR percentile < 0 OR percentile > 1)) AS percentiles_invalid,
    (SELECT count(*) FROM scores WHERE head_version = $head) AS scored;
