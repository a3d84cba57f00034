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


def parse_timestamp(value: pl.Expr) -> pl.Expr:
    """Text in any of the sites' forms, as UTC."""
    text = value.cast(pl.String).str.strip_chars()
    aware = [
        text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
        for f in AWARE_FORMATS
    ]
    naive = [
        text.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for f in NAIVE_UTC_FORMATS
    ]
    return pl.coalesce(aware + naive)


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
    if name in BOOLEANS:
        return parse_boolean(value, dtype)
    return parse_timestamp(value)


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


def _reason(converted: list[str]) -> pl.Expr:
    """The first problem of each row, or null."""

    def lost(name: str) -> pl.Expr:
        original = pl.col(f"_raw_{name}")
        shown = original.cast(pl.String).str.slice(0, 40)
        return pl.when(original.is_not_null() & pl.col(name).is_null()).then(
            pl.format(f"{name} is not {EXPECTED[name]}: '{{}}'", shown)
        )

    checks = [
        pl.when(pl.col("_raw_post_id").is_null()).then(pl.lit("missing post_id")),
        pl.when(pl.col("_raw_created_at").is_null()).then(pl.lit("missing created_at")),
        pl.when(pl.col("rating_raw").is_null()).then(pl.lit("missing rating")),
        pl.when(pl.col("rating").is_null() | ~pl.col("rating").is_in(RATINGS)).then(
            pl.format("unknown rating '{}'", pl.col("rating_raw"))
        ),
        *(lost(name) for name in converted),
        pl.when(~pl.col("md5").str.contains(MD5_PATTERN)).then(
            pl.format("md5 is not 32 hex digits: '{}'", pl.col("md5").str.slice(0, 40))
        ),
        *(
            pl.when(pl.col(n) < 0).then(pl.lit(f"{n} is negative"))
            for n in ("up_votes", "favorites")
        ),
    ]
    return pl.coalesce(checks)


def coerce(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Convert every column; return (usable rows, rejected rows: record, reason, raw).

    The adapter has already mapped `rating` to g/s/q/e (null where the site's value is
    unknown) and kept the site's value in `rating_raw`. A `raw` text column, if the adapter
    has one, travels with rejected rows; otherwise their original values are written as JSON.
    """
    raw = _with_required_columns(raw)
    converted = [name for name in CONVERTED if name in raw.columns]
    frame = (
        raw.with_columns(pl.col(n).alias(f"_raw_{n}") for n in converted)
        .with_columns(_parse(n, raw.schema[n]).alias(n) for n in converted)
        .with_columns(
            md5=pl.col("md5").cast(pl.String).str.strip_chars().str.to_lowercase().replace("", None)
        )
    )
    frame = frame.with_columns(_reason=_reason(converted))
    # Danbooru2021 writes a missing timestamp as the Unix epoch.
    good = frame.filter(pl.col("_reason").is_null()).with_columns(
        pl.when(pl.col(n).dt.epoch("s") != 0).then(pl.col(n)).alias(n)
        for n in TIMESTAMPS
        if n in converted
    )
    helpers = [f"_raw_{n}" for n in converted] + ["_reason"]
    bad = frame.filter(pl.col("_reason").is_not_null())
    if "raw" not in bad.columns:
        fields = [
            pl.col(f"_raw_{c}").alias(c) if c in converted else pl.col(c)
            for c in raw.columns
            if c != "record"
        ]
        bad = bad.with_columns(raw=pl.struct(fields).struct.json_encode())
    return good.drop(helpers), bad.select("record", pl.col("_reason").alias("reason"), "raw")
