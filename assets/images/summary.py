"""What the image index holds, for the asset's metadata and `scoretag images scan`."""

from __future__ import annotations

import polars as pl

from assets.images.locate import locate


def by_source(entries: pl.DataFrame) -> pl.DataFrame:
    """Images per source and kind (loose file, tar member, index row)."""
    return (
        entries.group_by("source", "kind")
        .agg(images=pl.len())
        .sort("source", "kind")
        .cast({"images": pl.Int64})
    )


def without_image(
    posts: pl.DataFrame, entries: pl.DataFrame, non_image_exts: tuple[str, ...]
) -> pl.DataFrame:
    """Picture posts (not videos, flash, archives) the index has no image for, per site."""
    pictures = posts.filter(~pl.col("file_ext").is_in(list(non_image_exts)).fill_null(False))
    found = locate(pictures.select("site", "post_id", "md5", "sha512"), entries)
    missing = pictures.join(found, on=["site", "post_id"], how="anti")
    counts = missing.group_by("site").agg(posts=pl.len()).sort("site")
    return counts.cast({"posts": pl.Int64})
