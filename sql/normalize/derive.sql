-- `winners`: the records of `newest` with when their file was taken (`snapshots`), the post's
-- age then, whether it is mature and in the reference, and its upload period.
CREATE OR REPLACE TEMP TABLE winners AS
SELECT
    n.*,
    s.snapshot_at,
    date_diff('microsecond', n.created_at, s.snapshot_at) / 86400000000 AS age_days,
    age_days < $maturity_days AS immature,
    age_days >= $maturity_days AND NOT coalesce(n.is_deleted, false) AS in_reference,
    period_of(n.created_at, $months) AS period
FROM newest AS n
LEFT JOIN snapshots AS s USING (source_file);

DROP TABLE newest;
