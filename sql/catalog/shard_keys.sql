-- The image keys of the embedding shards in $files (`shard_keys`), each with `at`: its row
-- counted over every shard the run reads (`shard_starts`: filename, start, as DuckDB names
-- the files).
CREATE OR REPLACE TEMP TABLE shard_keys AS
SELECT k.image_key, s.start + k.file_row_number AS at
FROM read_parquet($files, filename = true, file_row_number = true) AS k
JOIN shard_starts AS s USING (filename);
