-- The added_seq of every post whose export row may differ from the one written when the
-- catalog stood at change $seen (and held posts numbered up to $through), under head $head:
-- posts inserted or changed since (changed_seq), posts numbered since, the numbers of posts
-- that left since (dropped_posts), and every post of an image that one of those posts, or a
-- score of the head written or ranked again since, shows: an export holds one post per
-- image, and which one depends on all of them (a score's image is its post's: refresh_posts
-- drops the scores of a post whose image changed). A null number (a row written before the
-- counters) counts as changed. Repeats are left in. The export rebuilds the shards whose
-- ranges hold them.
WITH touched AS (
    SELECT added_seq, image_key
    FROM posts
    WHERE changed_seq IS NULL OR changed_seq > $seen OR added_seq IS NULL
        OR added_seq > $through
),
shown AS (
    SELECT image_key FROM touched WHERE image_key IS NOT NULL
    UNION
    SELECT image_key
    FROM scores
    WHERE head_version = $head AND (changed_seq IS NULL OR changed_seq > $seen)
)
SELECT added_seq FROM touched
UNION ALL
SELECT added_seq FROM dropped_posts WHERE changed_seq > $seen
UNION ALL
SELECT p.added_seq FROM posts AS p SEMI JOIN shown AS k ON k.image_key = p.image_key;
