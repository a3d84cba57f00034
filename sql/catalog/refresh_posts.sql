-- Write `changed` in place of `leaving` (prepared by changed_posts.sql or delta_posts.sql)
-- under the change number $seq. A post keeps its added_seq while its image stays the same;
-- new posts, and posts whose image changed, are numbered after every number given before
-- (the counter in catalog_state; gaps do not matter), so a scoring run finds them by a range
-- filter instead of comparing every post with every score. Posts that went, and the old
-- number of a changed image, are recorded in dropped_posts; their scores go with them: every
-- score belongs to a current post and its current image (and ranks only among those).
CREATE OR REPLACE TEMP TABLE dropping AS
SELECT l.post_key, l.added_seq
FROM leaving AS l
LEFT JOIN changed AS c ON c.post_key = l.post_key
WHERE c.post_key IS NULL OR c.image_key IS DISTINCT FROM l.image_key;

INSERT INTO dropped_posts SELECT post_key, added_seq, $seq FROM dropping;

DELETE FROM scores WHERE post_key IN (SELECT post_key FROM dropping);

DELETE FROM posts WHERE post_key IN (SELECT post_key FROM leaving);

-- Fresh numbers go to every row in order and are used by those without a kept one: a gap
-- for each kept number, and no copy of `changed` to number it first.
INSERT INTO posts BY NAME
SELECT
    c.*,
    coalesce(
        k.added_seq,
        (SELECT value FROM catalog_state WHERE key = 'added_seq') + row_number() OVER ()
    ) AS added_seq,
    $seq AS changed_seq
FROM changed AS c
LEFT JOIN leaving AS k ON k.post_key = c.post_key AND k.image_key IS NOT DISTINCT FROM c.image_key;

UPDATE catalog_state
SET value = value + (SELECT count(*) FROM changed)
WHERE key = 'added_seq';

DROP TABLE dropping;

DROP TABLE leaving;

DROP TABLE changed;
