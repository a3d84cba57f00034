-- The head's earlier scores get their new percentile within the catalog under the same head
-- (0 lowest, 1 highest; `new_percentiles`: row_id, percentile, ranked by the writer as
-- percent_rank() OVER (ORDER BY score) ranks them). Matched on rowid: a fraction of the cost
-- of a join on post_key strings, and every row of the head changes whenever rows are added.
UPDATE scores SET percentile = p.percentile
FROM new_percentiles AS p
WHERE scores.rowid = p.row_id;
