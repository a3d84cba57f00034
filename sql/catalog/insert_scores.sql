-- New scores under the head $head (`new_scores`: post, a rowid of `todo`; score; percentile),
-- with the post's keys taken from `todo`, where they stayed.
INSERT INTO scores (post_key, image_key, head_version, score, percentile, scored_at)
SELECT t.post_key, t.image_key, $head, n.score, n.percentile, now()
FROM new_scores AS n
JOIN todo AS t ON t.rowid = n.post;
