-- Every post of `result` whose image another post of it shares, with what picks the image's
-- canonical post (assets/normalize/images.py).
SELECT site, post_id, image_key, immature, is_deleted
FROM result
WHERE image_key IN (SELECT image_key FROM result GROUP BY image_key HAVING count(*) > 1);
