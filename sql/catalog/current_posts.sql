-- A full refresh, out of core: every current post (`new_posts`): normalized_scores' parts
-- ($parts, which name the winning record of each post by its raw file and record number)
-- joined with that record in the raw_posts files ($raw), loaded at $now.
CREATE OR REPLACE TEMP TABLE new_posts AS
SELECT
    s.site || ':' || CAST(s.post_id AS VARCHAR) AS post_key,
    s.site,
    s.post_id,
    r.md5,
    r.created_at,
    r.score,
    r.favorites,
    CAST(r.width AS INTEGER) AS width,
    CAST(r.height AS INTEGER) AS height,
    r.file_ext,
    r.tags,
    r.artist_tags,
    r.character_tags,
    r.copyright_tags,
    r.species_tags,
    r.meta_tags,
    s.image_key,
    s.rating,
    s.norm_score,
    s.is_canonical,
    s.is_deleted,
    s.immature,
    r.source_file,
    CAST($now AS TIMESTAMPTZ) AS loaded_at
FROM read_parquet($parts, union_by_name = true) AS s
JOIN read_parquet($raw, union_by_name = true) AS r
    ON r.site = s.site AND r.post_id = s.post_id AND r.source_file = s.source_file
    AND r.record = s.record;
