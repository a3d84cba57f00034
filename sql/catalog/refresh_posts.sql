-- Replace the catalog's posts with the current ones (`new_posts`, registered by the writer,
-- with `arrival`: its row number, which numbers the new ones without a window over all rows).
-- A post keeps its added_seq while its image stays the same; new posts, and posts whose image
-- changed, are numbered after every earlier one (gaps do not matter), so a run finds them by
-- a range filter instead of comparing every post with every score.
CREATE OR REPLACE TEMP TABLE held AS SELECT post_key, image_key, added_seq FROM posts;

DELETE FROM posts;

INSERT INTO posts BY NAME
SELECT
    n.* EXCLUDE (arrival),
    coalesce(h.added_seq, (SELECT coalesce(max(added_seq), 0) FROM held) + 1 + n.arrival)
        AS added_seq
FROM new_posts AS n
LEFT JOIN held AS h
    ON h.post_key = n.post_key AND h.image_key IS NOT DISTINCT FROM n.image_key;

-- Scores of posts that are gone, or whose image changed, go with them: every score belongs to
-- a current post and its current image (and ranks only among those).
DELETE FROM scores
WHERE NOT EXISTS (
    SELECT 1 FROM posts AS p WHERE p.post_key = scores.post_key AND p.image_key = scores.image_key
);

DROP TABLE held;
