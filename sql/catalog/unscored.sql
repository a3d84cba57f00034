-- Posts with an image and no score under the head $head: what a run has to score.
SELECT p.post_key, p.image_key
FROM posts AS p
WHERE p.image_key IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM scores AS s WHERE s.post_key = p.post_key AND s.head_version = $head
  )
ORDER BY p.image_key;
