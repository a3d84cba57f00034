"""Which raw files have images to embed that their latest embeddings run was not asked for:
images that arrived (fetched, a tar shard added) after the raw file was embedded."""

from __future__ import annotations

import polars as pl

from assets.embeddings.scope import scope


def new_images(
    posts: pl.DataFrame,
    requested: pl.DataFrame,
    index: pl.DataFrame,
    non_image_exts: tuple[str, ...],
) -> int:
    """Images of `posts` the index locates now and `requested` (image_key) does not list."""
    located = scope(posts, index, non_image_exts).images.select("image_key")
    return located.join(requested.select("image_key"), on="image_key", how="anti").height
