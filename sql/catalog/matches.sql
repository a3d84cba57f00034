-- The rows of `todo` (`post`: its rowid) whose image is in `shard_keys`, with the shard row
-- holding it (`at`). An image stored twice matches its post twice: the writer keeps one.
SELECT t.rowid AS post, k.at
FROM todo AS t
JOIN shard_keys AS k USING (image_key);
