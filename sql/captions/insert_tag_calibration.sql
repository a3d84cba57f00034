-- Store one rule's cut-points under a head (its old row deleted first, in one transaction).
INSERT INTO tag_calibrations (head_version, rule, family, record, created_at)
VALUES ($head, $rule, $family, $record::JSON, $created_at);
