"""One image, several posts: the same file posted to two sites (or twice to one) gets one
`image_key`, and one of its posts is the canonical one.

image_key: the md5 where the site gives one; else `sha512:` and the first 32 hex digits of
the sha512 (Philomena); else `<site>:<post_id>` (an image known only by its post).

Canonical post of an image, in this order of preference: not deleted; mature; the site that
comes first in `site_priority` (default Danbooru, e621, Gelbooru, Derpibooru: the richest tag
categories first); the lowest post id.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def image_key() -> pl.Expr:
    return pl.coalesce(
        pl.col("md5"),
        pl.lit("sha512:") + pl.col("sha512").str.slice(0, 32),
        pl.col("site") + pl.lit(":") + pl.col("post_id").cast(pl.String),
    ).alias("image_key")


def canonical(frame: pl.LazyFrame, site_priority: Sequence[str]) -> pl.LazyFrame:
    priority = pl.col("site").replace_strict(
        {site: rank for rank, site in enumerate(site_priority)},
        default=len(site_priority),
        return_dtype=pl.Int64,
    )
    order = pl.struct(
        pl.col("is_deleted").fill_null(False), pl.col("immature"), priority, pl.col("post_id")
    )
    return frame.with_columns(is_canonical=order.rank("ordinal").over("image_key") == 1)
