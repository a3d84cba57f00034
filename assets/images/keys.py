"""One image, one key: `image_key` is the md5 where the site gives one; else `sha512:` and
the first 32 hex digits of the sha512 (Philomena); else `<site>:<post_id>` (an image known
only by its post). Every stage keys images so."""

from __future__ import annotations

import polars as pl


def _fallback_key() -> pl.Expr:
    return pl.coalesce(
        pl.lit("sha512:") + pl.col("sha512").str.slice(0, 32),
        pl.col("site") + pl.lit(":") + pl.col("post_id").cast(pl.String),
    )


def with_image_key(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `image_key`. Most posts have an md5; the others' keys are built for them only."""
    keyed = frame.with_columns(image_key=pl.col("md5"))
    lacking = keyed["image_key"].is_null()
    if not lacking.any():
        return keyed
    keys = keyed.filter(lacking).select(_fallback_key()).to_series()
    return keyed.with_columns(keyed["image_key"].scatter(lacking.arg_true(), keys))
