-- A full run: every row of `result` into one parquet file per site and period under $folder
-- (site=<site>/period=<period>/, in one pass), the partition columns kept in the files.
COPY (SELECT * FROM result ORDER BY site, period, post_id) TO $folder (
    FORMAT parquet,
    PARTITION_BY (site, period),
    WRITE_PARTITION_COLUMNS true,
    OVERWRITE
);
