-- A full refresh of an empty catalog: every current post (`new_posts`) is new and none
-- leaves, so there is nothing to compare: `new_posts` becomes `changed` as it is.
ALTER TABLE new_posts RENAME TO changed;

CREATE OR REPLACE TEMP TABLE leaving AS
SELECT post_key, image_key, added_seq FROM posts LIMIT 0;
