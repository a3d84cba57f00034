-- Every score of the head $head ranked again (`ranked`: row_id, percentile, worked out by the
-- writer as percent_rank() OVER (ORDER BY score) would), and the list they rank against
-- (`reference`: score, ascending) replaced. Matched on rowid: a fraction of the cost of a join
-- on post_key strings. Every row of the head changes under the change number $seq.
UPDATE scores SET percentile = r.percentile, changed_seq = $seq
FROM ranked AS r
WHERE scores.rowid = r.row_id;

DELETE FROM score_reference WHERE head_version = $head;

INSERT INTO score_reference SELECT $head, score FROM reference;
