-- Forget a head's tag-family cut-points (of the given rules; every rule with an empty list).
DELETE FROM tag_calibrations
WHERE head_version = $head AND (len($rules) = 0 OR list_contains($rules, rule));
