-- Every score under the head $head with its rowid, for the writer to rank them all again.
SELECT rowid AS row_id, score FROM scores WHERE head_version = $head;
