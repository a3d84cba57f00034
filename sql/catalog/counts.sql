-- What the catalog holds under the head $head.
SELECT
    (SELECT count(*) FROM posts) AS posts,
    (SELECT count(*) FROM posts WHERE image_key IS NOT NULL) AS posts_with_image,
    (SELECT count(*) FROM scores WHERE head_version = $head) AS scored,
    (SELECT count(*) FROM posts AS p
        ANTI JOIN (SELECT post_key FROM scores WHERE head_version = $head) AS s
            ON s.post_key = p.post_key
        WHERE p.image_key IS NOT NULL) AS unscored,
    (SELECT count(DISTINCT head_version) FROM scores) AS heads_with_scores;
