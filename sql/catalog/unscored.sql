-- Posts with an image and no score under the head $head: what a run has to score.
-- An anti join on the head's post_keys (not a correlated NOT EXISTS) and no ORDER BY: the
-- writer finds each image in the embedding shards by itself, and this runs every time.
SELECT p.post_key, p.image_key
FROM posts AS p
ANTI JOIN (SELECT post_key FROM scores WHERE head_version = $head) AS s
    ON s.post_key = p.post_key
WHERE p.image_key IS NOT NULL;
