-- Per head: the frozen cut-points of the caption vocabularies' tag families (quality,
-- aesthetic, period, ...), one row per rule (assets/captions/families.py), filled by the
-- captions stage the first time an export uses the rule under the head.
CREATE TABLE IF NOT EXISTS tag_calibrations (
    head_version    VARCHAR NOT NULL,
    rule            VARCHAR NOT NULL,      -- the rule's key: column, cut-points, scope
    family          VARCHAR NOT NULL,      -- the family's name when it was frozen
    record          JSON NOT NULL,         -- cut-points and shares per site and rating
    created_at      TIMESTAMPTZ NOT NULL
);
