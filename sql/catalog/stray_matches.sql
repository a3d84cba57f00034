-- The rows of `todo` that no new shard holds (`strays`: post, a rowid of `todo`) matched with
-- the embedding shards in $files, read before by the head (an image shared with an older post,
-- or one embedded before its post came); `at` counted on from `shard_starts`.
SELECT t.rowid AS post, s.start + k.file_row_number AS at
FROM read_parquet($files, filename = true, file_row_number = true) AS k
JOIN shard_starts AS s USING (filename)
JOIN todo AS t ON t.image_key = k.image_key
WHERE t.rowid IN (SELECT post FROM strays);
