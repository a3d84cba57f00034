-- A full refresh: of every current post (`new_posts`), the rows that differ from the catalog's
-- (`changed`: new posts, and posts with any column changed), and the catalog's rows that go
-- (`leaving`: replaced by a changed row, or gone from the current posts). Compared on every
-- column but the bookkeeping ones, so a refresh that changes nothing writes nothing.
CREATE OR REPLACE TEMP TABLE changed AS
SELECT * FROM new_posts
WHERE post_key IN (
    SELECT post_key FROM (
        SELECT
            post_key, site, post_id, image_key, md5, created_at, rating, score, favorites,
            norm_score, is_canonical, is_deleted, immature, width, height, file_ext, tags,
            artist_tags, character_tags, copyright_tags, species_tags, meta_tags, source_file
        FROM new_posts
        EXCEPT
        SELECT
            post_key, site, post_id, image_key, md5, created_at, rating, score, favorites,
            norm_score, is_canonical, is_deleted, immature, width, height, file_ext, tags,
            artist_tags, character_tags, copyright_tags, species_tags, meta_tags, source_file
        FROM posts
    )
);

CREATE OR REPLACE TEMP TABLE leaving AS
SELECT p.post_key, p.image_key, p.added_seq
FROM posts AS p
WHERE p.post_key IN (SELECT post_key FROM changed)
    OR p.post_key NOT IN (SELECT post_key FROM new_posts);
