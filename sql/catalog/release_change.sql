-- Give back change number $seq, taken by a refresh that changed nothing (inside its
-- transaction): a run on an unchanged catalog leaves change_seq as it was, so the exports
-- that recorded it have nothing to look at again.
UPDATE catalog_state SET value = value - 1 WHERE key = 'change_seq' AND value = $seq;
