-- A refresh from normalized_scores' change files: the rows to write (`upserts`, every column),
-- and the catalog's rows that go (`leaving`: replaced by an upsert, or in `removed`).
CREATE OR REPLACE TEMP TABLE changed AS SELECT * FROM upserts;

CREATE OR REPLACE TEMP TABLE leaving AS
SELECT p.post_key, p.image_key, p.added_seq
FROM posts AS p
WHERE p.post_key IN (SELECT post_key FROM upserts UNION ALL SELECT post_key FROM removed);
