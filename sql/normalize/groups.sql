-- Per group (site, rating, period) of `current`: rows and reference posts.
SELECT site, rating, period, count(*) AS posts, count(*) FILTER (in_reference) AS reference
FROM current
GROUP BY ALL;
