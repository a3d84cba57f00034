-- The head $head has looked at every post up to $through and read the shards in `read_shards`.
UPDATE heads SET scored_through = $through WHERE version = $head;

INSERT INTO head_shards SELECT $head, shard FROM read_shards;
