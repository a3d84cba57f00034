-- A head's frozen cut-points of the given tag-family rules.
SELECT rule, record::VARCHAR AS record
FROM tag_calibrations
WHERE head_version = $head AND list_contains($rules, rule);
