-- The canonical flags worked out for shared images (`ranked`), into `result`.
UPDATE result SET is_canonical = r.is_canonical
FROM ranked AS r
WHERE result.site = r.site AND result.post_id = r.post_id;
