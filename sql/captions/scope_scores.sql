-- The scores a quantile calibration is taken over.
SELECT score FROM caption_scope($head, $sites, $ratings) ORDER BY score;
