-- The posts the active head could pair: scored under `head`, live, of the chosen ratings and
-- sites (empty: every site), one post per image (the canonical one first), best first.
SELECT post_key, aesthetic_score AS score
FROM catalog
WHERE head_version = $head
    AND NOT coalesce(is_deleted, false)
    AND list_contains($ratings, rating)
    AND (len($sites) = 0 OR list_contains($sites, site))
QUALIFY row_number() OVER (
    PARTITION BY image_key ORDER BY is_canonical DESC NULLS LAST, site, post_id
) = 1
ORDER BY score DESC, post_key;
