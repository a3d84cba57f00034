-- When each raw file was taken: the newest timestamp it holds (of every record, current or not).
SELECT source_file, max(coalesce(updated_at, created_at)) AS snapshot_at
FROM read_parquet($files, union_by_name = true)
GROUP BY ALL;
