-- The added_seq of every post whose export row may differ from the one written when the
-- catalog stood at change $seen (and held posts numbered up to $through), under head $head:
-- posts inserted or changed since (changed_seq), posts numbered since, posts whose score under
-- the head was written or ranked again since, the numbers of posts that left since
-- (dropped_posts), and every post of an image one of those posts shows: an export holds one
-- post per image, and which one depends on all of them. A null number (a row written before
-- the counters) counts as changed. The export rebuilds the shards whose ranges hold them.
WITH touched AS (
    SELECT added_seq, image_key
    FROM posts
    WHERE changed_seq IS NULL OR changed_seq > $seen OR added_seq IS NULL
        OR added_seq > $through
    UNION ALL
    SELECT p.added_seq, p.image_key
    FROM scores AS s
    JOIN posts AS p ON p.post_key = s.post_key
    WHERE s.head_version = $head AND (s.changed_seq IS NULL OR s.changed_seq > $seen)
),
shown AS (
    SELECT DISTINCT image_key FROM touched WHERE image_key IS NOT NULL
)
SELECT added_seq FROM touched
UNION
SELECT added_seq FROM dropped_posts WHERE changed_seq > $seen
UNION
SELECT p.added_seq FROM posts AS p SEMI JOIN shown AS k ON k.image_key = p.image_key;
