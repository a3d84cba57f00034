-- Whether the catalog records its changes (sql/schema/003_changes.sql): the change counter,
-- the change number of each post and score, and the posts that left. A catalog written
-- before them is exported whole.
SELECT
    (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'catalog_state') = 1
    AND (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'dropped_posts') = 1
    AND (
        SELECT count(*) FROM duckdb_columns()
        WHERE column_name = 'changed_seq' AND table_name IN ('posts', 'scores')
    ) = 2 AS tracked;
