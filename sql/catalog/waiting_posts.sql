-- Earlier posts (added_seq up to $through) still without a score under the head $head whose
-- image is in `arrived_keys` (images of embedding shards the head has not read before, that
-- no new post claimed): their embedding came after the post.
SELECT p.post_key, p.image_key
FROM posts AS p
SEMI JOIN arrived_keys AS k ON k.image_key = p.image_key
WHERE p.added_seq <= $through
    AND NOT EXISTS (
        SELECT 1 FROM scores AS s WHERE s.head_version = $head AND s.post_key = p.post_key
    );
