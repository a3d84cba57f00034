"""Caption shards: calibrated score buckets, captions that start with score tags, and
trainer-ready exports (parquet, JSON lines, kohya, webdataset) with a manifest."""
