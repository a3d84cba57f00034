-- Posts with an image that the catalog took in after the head's last run ($through): they
-- have no score under it yet. A range filter on one integer column, whatever the catalog's size.
SELECT post_key, image_key
FROM posts
WHERE added_seq > $through AND image_key IS NOT NULL;
