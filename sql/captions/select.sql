-- The posts an export writes, in a stable order (site, post id): same catalog, same shards.
SELECT
    post_key, site, post_id, md5, image_key, rating, width, height, file_ext,
    tags, character_tags, copyright_tags, artist_tags, species_tags, meta_tags,
    aesthetic_score AS score, bucket
FROM caption_selection($head, $min_bucket, $ratings, $sites)
ORDER BY site, post_id;
