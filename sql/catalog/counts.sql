-- What the catalog holds under the head $head.
SELECT
    (SELECT count(*) FROM posts) AS posts,
    (SELECT count(*) FROM posts WHERE image_key IS NOT NULL) AS posts_with_image,
    (SELECT count(*) FROM scores WHERE head_version = $head) AS scored,
    -- every score is of a current post and its current image (refresh_posts.sql): the
    -- unscored are the difference, without joining millions of rows
    (SELECT count(*) FROM posts WHERE image_key IS NOT NULL)
        - (SELECT count(*) FROM scores WHERE head_version = $head) AS unscored,
    (SELECT count(DISTINCT head_version) FROM scores) AS heads_with_scores;
