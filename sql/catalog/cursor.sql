-- Where the head $head's scoring stands: the added_seq its runs have looked at up to, the
-- embedding shards they have read, how many scores it holds and how many its percentiles
-- were ranked against, and the newest added_seq of the catalog.
SELECT
    (SELECT scored_through FROM heads WHERE version = $head) AS scored_through,
    (SELECT coalesce(list(shard), []) FROM head_shards WHERE head_version = $head) AS shards,
    (SELECT count(*) FROM scores WHERE head_version = $head) AS scored,
    (SELECT count(*) FROM score_reference WHERE head_version = $head) AS ranked,
    (SELECT coalesce(max(added_seq), 0) FROM posts) AS latest;
