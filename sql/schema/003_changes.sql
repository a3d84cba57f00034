-- Change numbers: every step that writes posts or scores takes the next number, and stamps
-- the rows it writes with it, so a reader (the caption export) finds what changed since it
-- last looked without comparing the catalog with anything.

-- Counters: 'change_seq', the last change number issued; 'added_seq', the last added_seq
-- given to a post (kept here: a post that leaves must not free its number for a later one,
-- or a head that has scored up to it would never see the later post); 'normalize_seq', the
-- last change file of normalized_scores this catalog has applied.
CREATE TABLE IF NOT EXISTS catalog_state (
    key             VARCHAR PRIMARY KEY,
    value           BIGINT NOT NULL
);

-- The change that inserted the post's row or last changed any of its columns.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS changed_seq BIGINT;

-- The change that inserted the score or last ranked its percentile again.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS changed_seq BIGINT;

-- Posts that left `posts` (gone from every raw file), and the old added_seq of posts whose
-- image changed (they came back under a new added_seq), with the change that did it.
CREATE TABLE IF NOT EXISTS dropped_posts (
    post_key        VARCHAR NOT NULL,
    added_seq       BIGINT,
    changed_seq     BIGINT NOT NULL
);

-- A catalog written before these counters: start them above what it holds.
INSERT INTO catalog_state
SELECT 'added_seq', (SELECT coalesce(max(added_seq), 0) FROM posts)
WHERE NOT EXISTS (SELECT 1 FROM catalog_state WHERE key = 'added_seq');

INSERT INTO catalog_state
SELECT 'change_seq', 0
WHERE NOT EXISTS (SELECT 1 FROM catalog_state WHERE key = 'change_seq');
