-- How many posts an export selects, per bucket.
SELECT bucket, count(*) AS posts
FROM caption_selection($head, $min_bucket, $ratings, $sites)
GROUP BY bucket
ORDER BY bucket;
