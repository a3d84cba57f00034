-- An incremental run: the images the winners have or had (`around`), every current post of
-- them in `result` (posts of the parts $parts outside it join it first, so that their flag
-- can change there), with what picks the canonical post.
CREATE OR REPLACE TEMP TABLE around AS
SELECT r.image_key
FROM result AS r
SEMI JOIN winners AS w ON w.site = r.site AND w.post_id = r.post_id
UNION
SELECT image_key FROM replaced;

INSERT INTO result BY NAME
SELECT p.*
FROM read_parquet($parts, union_by_name = true) AS p
SEMI JOIN around AS a ON a.image_key = p.image_key
ANTI JOIN result AS r ON r.site = p.site AND r.post_id = p.post_id
ANTI JOIN winners AS w ON w.site = p.site AND w.post_id = p.post_id;

SELECT r.site, r.post_id, r.image_key, r.immature, r.is_deleted
FROM result AS r
SEMI JOIN around AS a ON a.image_key = r.image_key;
