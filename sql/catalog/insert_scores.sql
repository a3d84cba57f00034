-- New scores (`new_scores`: post_key, image_key, score, percentile) under the head $head.
INSERT INTO scores (post_key, image_key, head_version, score, percentile, scored_at)
SELECT post_key, image_key, $head, score, percentile, now() FROM new_scores;
