-- The sites and ratings with a popularity among the posts an export can select under the
-- head: a family cut within each site and rating needs cut-points for every one of them.
SELECT DISTINCT site, rating
FROM caption_selection($head, 1, $ratings, [])
WHERE norm_score IS NOT NULL;
