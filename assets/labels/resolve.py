"""From the label store's events to one training target per post.

Each labeler's latest label of a post counts (an undone label does not; a skip is not a
label); the post's target is the mean over its labelers, on the 1-5 scale.
"""

from __future__ import annotations

import polars as pl

from assets.labels.stats import votes

LABELS: dict[str, pl.DataType] = {
    "post_key": pl.String,
    "site": pl.String,
    "post_id": pl.Int64,
    "image_key": pl.String,
    "target": pl.Float64,  # mean of the labelers' latest labels, 1..5
    "labelers": pl.Int64,
    "labels": pl.List(pl.Int64),  # each labeler's latest label
    "labeler_names": pl.List(pl.String),
    "in_pool": pl.Boolean,
}


def resolve(events: pl.DataFrame, pool: pl.DataFrame) -> pl.DataFrame:
    """One row per labeled post: its target and who labeled it, joined to the pool."""
    per_post = (
        votes(events)
        .sort("post_key", "labeler")
        .group_by("post_key", maintain_order=True)
        .agg(
            target=pl.col("value").mean(),
            labelers=pl.len(),
            labels=pl.col("value"),
            labeler_names=pl.col("labeler"),
        )
    )
    pooled = pool.select("post_key", "image_key", in_pool=pl.lit(True))
    parts = pl.col("post_key").str.split_exact(":", 1)
    joined = per_post.join(pooled, on="post_key", how="left").with_columns(
        site=parts.struct.field("field_0"),
        post_id=parts.struct.field("field_1").cast(pl.Int64, strict=False),
        in_pool=pl.col("in_pool").fill_null(False),
    )
    return joined.select([pl.col(c).cast(t) for c, t in LABELS.items()])
