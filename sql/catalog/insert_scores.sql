-- New scores under the head $head (`new_scores`: post, a rowid of `todo`; score; percentile),
-- with the post's keys taken from `todo`, where they stayed, under the change number $seq.
INSERT INTO scores (post_key, image_key, head_version, score, percentile, scored_at, changed_seq)
SELECT t.post_key, t.image_key, $head, n.score, n.percentile, now(), $seq
FROM new_scores AS n
JOIN todo AS t ON t.rowid = n.post;
