-- The scored catalog: one DuckDB file, $SCORETAG_HOME/catalog.duckdb.
-- Applied in file-name order by the catalog writer; every statement is idempotent.

-- Every current post of every site, with its normalized booru score.
CREATE TABLE IF NOT EXISTS posts (
    post_key        VARCHAR NOT NULL,      -- '<site>:<post_id>', as labels refer to posts
    site            VARCHAR NOT NULL,
    post_id         BIGINT NOT NULL,
    image_key       VARCHAR,               -- md5, or a key built for posts without one
    md5             VARCHAR,
    created_at      TIMESTAMPTZ,
    rating          VARCHAR,               -- g, s, q, e
    score           BIGINT,                -- the site's net score
    favorites       BIGINT,
    norm_score      DOUBLE,                -- per-site normalized popularity in [0, 1]
    is_canonical    BOOLEAN,               -- the post that stands for its image
    is_deleted      BOOLEAN,
    immature        BOOLEAN,               -- too young for its score to mean much yet
    width           INTEGER,
    height          INTEGER,
    file_ext        VARCHAR,
    tags            VARCHAR[],
    artist_tags     VARCHAR[],
    character_tags  VARCHAR[],
    copyright_tags  VARCHAR[],
    species_tags    VARCHAR[],             -- e621's category; null where the site has none
    meta_tags       VARCHAR[],             -- dropped from captions
    source_file     VARCHAR,               -- the raw file the post came from
    loaded_at       TIMESTAMPTZ,
    added_seq       BIGINT                 -- when the catalog first held the post with this
                                           -- image, as a counter: how a run finds what is new
);

-- Every head the catalog has been scored with; at most one is active.
CREATE TABLE IF NOT EXISTS heads (
    version         VARCHAR NOT NULL,
    head_type       VARCHAR,
    card            JSON,
    active          BOOLEAN NOT NULL DEFAULT false,
    activated_at    TIMESTAMPTZ,
    registered_at   TIMESTAMPTZ,
    scored_through  BIGINT                 -- the head's runs have looked at every post up to
                                           -- this added_seq (null: never scored)
);

-- Aesthetic scores, one row per (post, head version); older heads' rows are kept.
CREATE TABLE IF NOT EXISTS scores (
    post_key        VARCHAR NOT NULL,
    image_key       VARCHAR NOT NULL,
    head_version    VARCHAR NOT NULL,
    score           DOUBLE NOT NULL,       -- in [0, 1]
    percentile      DOUBLE,                -- within the catalog, under the same head
    scored_at       TIMESTAMPTZ NOT NULL
);

-- Per head: the embedding shards its runs have read (relative to the embedding store), so a
-- run reads only the shards added since.
CREATE TABLE IF NOT EXISTS head_shards (
    head_version    VARCHAR NOT NULL,
    shard           VARCHAR NOT NULL
);

-- Per head: the scores its percentiles rank against, ascending: the head's scores when they
-- were last ranked. Scores added since are ranked against the same list, so no percentile
-- moves on a daily run; the writer ranks everything again once the head's scores have grown
-- or shrunk by more than `[catalog] rerank_growth` of it.
CREATE TABLE IF NOT EXISTS score_reference (
    head_version    VARCHAR NOT NULL,
    score           DOUBLE NOT NULL
);

-- Per head: the cut-points that turn a score into a score bucket (filled by the captions stage).
CREATE TABLE IF NOT EXISTS calibrations (
    head_version    VARCHAR NOT NULL,
    bucket          INTEGER NOT NULL,      -- 1..9, as in score_1 .. score_9
    min_score       DOUBLE NOT NULL,
    max_score       DOUBLE NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
