-- The posts an export writes, in a stable order: by added_seq (when the catalog first held
-- the post with its image), so that new posts come last and a daily export appends them;
-- then site and post id (a catalog written before added_seq has none). Same catalog, same
-- shards.
SELECT
    post_key, site, post_id, md5, image_key, rating, width, height, file_ext,
    tags, character_tags, copyright_tags, artist_tags, species_tags, meta_tags,
    aesthetic_score AS score, bucket, added_seq,
    -- what vocabularies' tag families read (assets/captions/families.py)
    norm_score AS popularity, aesthetic_percentile AS percentile,
    year(timezone('UTC', created_at))::DOUBLE AS year
FROM caption_selection($head, $min_bucket, $ratings, $sites)
ORDER BY added_seq, site, post_id;
