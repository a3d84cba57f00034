-- Replace the catalog's posts with the current ones (`new_posts`, registered by the writer).
-- Scores stay: they are keyed by post_key and survive a refresh.
DELETE FROM posts;
INSERT INTO posts BY NAME SELECT * FROM new_posts;
