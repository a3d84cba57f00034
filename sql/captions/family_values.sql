-- What the tag families of a vocabulary are cut over (assets/captions/families.py): every
-- live post scored under the head, one per image as the exports pick them, with the values
-- a family can read.
SELECT
    site, rating, norm_score AS popularity, aesthetic_score AS score,
    aesthetic_percentile AS percentile, year(timezone('UTC', created_at))::DOUBLE AS year
FROM caption_selection($head, 1, $ratings, []);
