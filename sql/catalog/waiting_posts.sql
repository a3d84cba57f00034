-- Earlier posts (added_seq up to $through) still without a score under the head $head whose
-- image is in a shard the head has not read before (`shard_keys`) and that no new post
-- claimed: their embedding came after the post. They join the run's `todo`.
INSERT INTO todo
SELECT p.post_key, p.image_key
FROM posts AS p
SEMI JOIN (SELECT image_key FROM shard_keys ANTI JOIN todo USING (image_key)) AS k
    USING (image_key)
WHERE p.added_seq <= $through
    AND NOT EXISTS (
        SELECT 1 FROM scores AS s WHERE s.head_version = $head AND s.post_key = p.post_key
    );
