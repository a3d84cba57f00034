-- The posts a preference export pairs, by post_key, whether scored or not: their keys for
-- finding the image, what their captions are built from, and their score under the active
-- head (null where it has not scored them).
SELECT
    post_key, site, post_id, md5, image_key, rating, file_ext,
    tags, character_tags, copyright_tags, artist_tags, meta_tags,
    coalesce(is_deleted, false) AS is_deleted,
    aesthetic_score AS score
FROM catalog
WHERE post_key IN (SELECT unnest($keys))
ORDER BY post_key;
