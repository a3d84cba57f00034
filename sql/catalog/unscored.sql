-- The posts a run looks for an embedding for (`todo`, each numbered by its rowid): those the
-- catalog took in after the head's last run ($through), which have no score under it yet. A
-- range filter on one integer column, whatever the catalog's size. The keys stay in DuckDB:
-- the writer handles row numbers, and the scores go in joined back to these rows.
CREATE OR REPLACE TEMP TABLE todo AS
SELECT post_key, image_key
FROM posts
WHERE added_seq > $through AND image_key IS NOT NULL;
