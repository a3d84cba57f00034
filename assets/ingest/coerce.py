"""From a site's raw values to the common schema's types, vectorised, with a reason for every
record that cannot be used.

Adapters hand over a frame whose columns carry the common names but whatever type the file
had (Danbooru2021 writes numbers as strings, e621's export writes booleans as t/f). Every
value is converted here; a record whose value does not convert is not dropped silently: it
leaves with the first reason that applies.
"""

from __future__ import annotations

import polars as pl

from assets.ingest.schema import RATINGS

INTEGERS = (
    "post_id",
    "score",
    "up_votes",
    "down_votes",
    "favorites",
    "width",
    "height",
    "file_size",
    "parent_id",
)
BOOLEANS = ("is_deleted", "is_pending")
TIMESTAMPS = ("created_at", "updated_at")
CONVERTED = (*INTEGERS, *BOOLEANS, *TIMESTAMPS)
EXPECTED = {
    **dict.fromkeys(INTEGERS, "an integer"),
    **dict.fromkeys(BOOLEANS, "a boolean"),
    **dict.fromkeys(TIMESTAMPS, "a timestamp"),
}

# Timestamp forms the sites use. A value matching none of them is an error.
AWARE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",  # Rails with offset: Danbooru, e621 APIs
    "%Y-%m-%dT%H:%M:%S%:z",
    "%a %b %d %H:%M:%S %z %Y",  # Gelbooru
)
NAIVE_UTC_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f UTC",  # Danbooru2021
    "%Y-%m-%d %H:%M:%S UTC",
    "%Y-%m-%d %H:%M:%S%.f",  # e621 db_export
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.fZ",  # Philomena
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
)
TRUE_TEXT = ("t", "true", "1", "yes")
FALSE_TEXT = ("f", "false", "0", "no", "")
MD5_PATTERN = r"^[0-9a-f]{32}$"


def _format_expr(text: pl.Expr, fmt: str) -> pl.Expr:
    if fmt in AWARE_FORMATS:
        return text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
    return text.str.to_datetime(fmt, strict=False, time_unit="us").dt.replace_time_zone("UTC")


def parse_timestamp(value: pl.Expr) -> pl.Expr:
    """Text in any of the sites' forms, as UTC."""
    text = value.cast(pl.String).str.strip_chars()
    return pl.coalesce([_format_expr(text, f) for f in (*AWARE_FORMATS, *NAIVE_UTC_FORMATS)])


def _likely_format(text: pl.Series) -> str | None:
    """The form most of a sample of the column's values take."""
    sample = text.drop_nulls().head(200).to_frame("t")
    if sample.height == 0:
        return None
    hits = sample.select(
        _format_expr(pl.col("t"), f).is_not_null().sum().alias(f)
        for f in (*AWARE_FORMATS, *NAIVE_UTC_FORMATS)
    ).row(0, named=True)
    best = max(hits, key=hits.get)
    return best if hits[best] else None


def _utc(values: pl.Series) -> pl.Series:
    if values.dtype.time_zone is None:
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return values.cast(pl.Datetime("us", values.dtype.time_zone)).dt.convert_time_zone("UTC")


def _retry_missed(parsed: pl.Series, text: pl.Series) -> pl.Series:
    """Values the first parse missed, tried again in every form."""
    missed = parsed.is_null() & text.is_not_null()
    if not missed.any():
        return parsed
    retried = text.filter(missed).to_frame("t").select(parse_timestamp(pl.col("t"))).to_series()
    return parsed.scatter(missed.arg_true(), retried)


def parse_timestamps(values: pl.Series, text: pl.Series | None = None) -> pl.Series:
    """parse_timestamp for a whole column, about ten times faster: a file writes its
    timestamps one way, so the column is parsed in the form its first values take, and only
    the values that form misses are tried in every form. A column an adapter parsed already
    (`values` are datetimes, naive ones UTC; `text` what the file said) is kept, and only
    what it missed is retried."""
    if isinstance(values.dtype, pl.Datetime):
        parsed = _utc(values)
        return parsed if text is None else _retry_missed(parsed, text.cast(pl.String))
    text = values.cast(pl.String).str.strip_chars()
    fmt = _likely_format(text)
    if fmt is None:
        parsed = pl.Series(values.name, [None] * len(text), pl.Datetime("us", "UTC"))
    else:
        parsed = text.to_frame("t").select(_format_expr(pl.col("t"), fmt)).to_series()
    return _retry_missed(parsed, text).alias(values.name)


def parse_integer(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return value.cast(pl.Int64)
    if dtype.is_float():
        return pl.when(value == value.round()).then(value.cast(pl.Int64, strict=False))
    return value.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)


def parse_boolean(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return value
    if dtype.is_integer():
        return value != 0
    text = value.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.is_in(TRUE_TEXT)).then(True).when(text.is_in(FALSE_TEXT)).then(False)


def _parse(name: str, dtype: pl.DataType) -> pl.Expr:
    value = pl.col(name)
    if name == "down_votes":  # Danbooru and e621 store down votes as negative numbers
        return parse_integer(value, dtype).abs()
    if name in INTEGERS:
        return parse_integer(value, dtype)
    return parse_boolean(value, dtype)


def _with_required_columns(raw: pl.DataFrame) -> pl.DataFrame:
    needed = (
        "post_id",
        "created_at",
        "rating",
        "rating_raw",
        "md5",
        "up_votes",
        "down_votes",
        "favorites",
    )
    return raw.with_columns(pl.lit(None).alias(n) for n in needed if n not in raw.columns)


def _checks(converted: list[str]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, reason) for every problem a record can have, in the order they are told."""

    def lost(name: str) -> tuple[pl.Expr, pl.Expr]:
        original = pl.col(f"_raw_{name}")
        shown = original.cast(pl.String).str.slice(0, 40)
        return (
            original.is_not_null() & pl.col(name).is_null(),
            pl.format(f"{name} is not {EXPECTED[name]}: '{{}}'", shown),
        )

    def missing(name: str) -> pl.Expr:
        return pl.col(name).is_null() & pl.col(f"_raw_{name}").is_null()

    return [
        (missing("post_id"), pl.lit("missing post_id")),
        (missing("created_at"), pl.lit("missing created_at")),
        (pl.col("rating_raw").is_null(), pl.lit("missing rating")),
        (
            pl.col("rating").is_null() | ~pl.col("rating").is_in(RATINGS),
            pl.format("unknown rating '{}'", pl.col("rating_raw")),
        ),
        *(lost(name) for name in converted),
        (
            ~pl.col("md5").str.contains(MD5_PATTERN),
            pl.format("md5 is not 32 hex digits: '{}'", pl.col("md5").str.slice(0, 40)),
        ),
        *((pl.col(n) < 0, pl.lit(f"{n} is negative")) for n in ("up_votes", "favorites")),
    ]


def _first_problem(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """The index of the first check a row fails, or null: cheap, since no text is made."""
    return pl.coalesce(
        pl.when(condition.fill_null(False)).then(pl.lit(i, pl.Int16))
        for i, (condition, _) in enumerate(checks)
    )


def _reason(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """The text of the first problem (applied to the few rejected rows only)."""
    reason = pl.lit(None, pl.String)
    for i, (_, text) in reversed(list(enumerate(checks))):
        reason = pl.when(pl.col("_problem") == i).then(text).otherwise(reason)
    return reason


def coerce(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Convert every column; return (usable rows, rejected rows: record, reason, raw).

    The adapter has already mapped `rating` to g/s/q/e (null where the site's value is
    unknown) and kept the site's value in `rating_raw`. A `raw` text column, if the adapter
    has one, travels with rejected rows; otherwise their original values are written as JSON.
    """
    raw = _with_required_columns(raw)
    converted = [name for name in CONVERTED if name in raw.columns]
    stamps = [n for n in converted if n in TIMESTAMPS]
    # `_raw_<name>` is what the file said, for the reasons. An adapter that parsed a column
    # itself hands over, as `_raw_<name>`, the text of the values it could not parse (null
    # where it could); for every other column it is the column as the adapter gave it.
    frame = (
        raw.with_columns(
            pl.col(n).alias(f"_raw_{n}") for n in converted if f"_raw_{n}" not in raw.columns
        )
        .with_columns(_parse(n, raw.schema[n]).alias(n) for n in converted if n not in stamps)
        .with_columns(
            parse_timestamps(raw[n], raw[f"_raw_{n}"] if f"_raw_{n}" in raw.columns else None)
            for n in stamps
        )
        .with_columns(
            md5=pl.col("md5").cast(pl.String).str.strip_chars().str.to_lowercase().replace("", None)
        )
    )
    checks = _checks(converted)
    frame = frame.with_columns(_problem=_first_problem(checks))
    # Danbooru2021 writes a missing timestamp as the Unix epoch.
    good = frame.filter(pl.col("_problem").is_null()).with_columns(
        pl.when(pl.col(n).dt.epoch("s") != 0).then(pl.col(n)).alias(n)
        for n in TIMESTAMPS
        if n in converted
    )
    helpers = [f"_raw_{n}" for n in converted] + ["_problem"]
    bad = frame.filter(pl.col("_problem").is_not_null()).with_columns(_reason=_reason(checks))
    if "raw" not in bad.columns:
        fields = [
            pl.coalesce(pl.col(f"_raw_{c}").cast(pl.String), pl.col(c).cast(pl.String)).alias(c)
            if c in converted
            else pl.col(c)
            for c in raw.columns
            if c != "record" and not c.startswith("_raw_")
        ]
        bad = bad.with_columns(raw=pl.struct(fields).struct.json_encode())
    return good.drop(helpers), bad.select("record", reason="_reason", raw="raw")
