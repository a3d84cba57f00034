"""One image, several posts: the same file posted to two sites (or twice to one) gets one
`image_key`, and one of its posts is the canonical one.

image_key (assets/images/keys.py): the md5 where the site gives one; else `sha512:` and the
first 32 hex digits of the sha512 (Philomena); else `<site>:<post_id>` (an image known only
by its post).

Canonical post of an image, in this order of preference: not deleted; mature; the site that
comes first in `site_priority` (default Danbooru, e621, Gelbooru, Derpibooru: the richest tag
categories first); the lowest post id.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from assets.ingest.current import repeated


def canonical(frame: pl.DataFrame, site_priority: Sequence[str]) -> pl.DataFrame:
    """Add `is_canonical`. Most images have one post, which is canonical: only images with
    several posts are ranked."""
    # Hashes first (cheap); a collision only costs ranking a few posts more.
    shared = pl.Series(repeated(frame["image_key"].hash().to_numpy()))
    if not shared.any():
        return frame.with_columns(is_canonical=pl.lit(True))
    ranks = {site: rank for rank, site in enumerate(site_priority)}
    ranked = (
        frame.filter(shared)
        .select(
            "site",
            "post_id",
            "image_key",
            "immature",
            deleted=pl.col("is_deleted").fill_null(False),
            priority=pl.col("site").replace_strict(
                ranks, default=len(site_priority), return_dtype=pl.Int64
            ),
        )
        .sort("image_key", "deleted", "immature", "priority", "post_id")
        .select("site", "post_id", is_canonical=pl.col("image_key").is_first_distinct())
    )
    return frame.join(ranked, on=["site", "post_id"], how="left").with_columns(
        is_canonical=pl.col("is_canonical").fill_null(True)
    )
