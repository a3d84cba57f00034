-- A scoring run's working tables, dropped when it ends, however it ends.
DROP TABLE IF EXISTS todo;
DROP TABLE IF EXISTS shard_keys;
