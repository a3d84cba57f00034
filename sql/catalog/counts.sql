-- What the catalog holds under the head $head.
SELECT
    (SELECT count(*) FROM posts) AS posts,
    (SELECT count(*) FROM posts WHERE image_key IS NOT NULL) AS posts_with_image,
    (SELECT count(*) FROM scores WHERE head_version = $head) AS scored,
    (SELECT count(DISTINCT head_version) FROM scores) AS heads_with_scores;
