-- The upload period a post falls in: its created_at (UTC) truncated to a multiple of `months`
-- months counted from 1970-01, as polars' dt.truncate("<n>mo") does; as text, like 2024-01-01.
CREATE OR REPLACE TEMP MACRO period_month(ts, months) AS
    months * floor(((year(ts) - 1970) * 12 + month(ts) - 1) / months);

CREATE OR REPLACE TEMP MACRO period_of(ts, months) AS
    CAST(make_date(
        CAST(1970 + floor(period_month(ts, months) / 12) AS BIGINT),
        CAST(period_month(ts, months) - 12 * floor(period_month(ts, months) / 12) + 1 AS BIGINT),
        1
    ) AS VARCHAR);
