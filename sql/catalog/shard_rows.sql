-- The rows of each embedding shard in $files, from the parquet footers, in the list's order.
SELECT file_name, num_rows FROM parquet_file_metadata($files);
