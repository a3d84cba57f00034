"""manual_labels joined with the embeddings of the active backbone: what a head trains on.

Labels whose image has no embedding (not embedded yet, or unusable) are counted, never
dropped silently; the pool gives each post's rating, for the per-rating metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from assets.head.train import TrainingData


@dataclass(frozen=True)
class Joined:
    data: TrainingData
    labels: int  # labelled posts in manual_labels
    without_embedding: pl.DataFrame  # post_key, image_key of labels left out


def join_labels(
    labels: pl.DataFrame, pool: pl.DataFrame, keys: pl.Series, vectors: np.ndarray
) -> Joined:
    """`labels`: manual_labels rows (post_key, site, image_key, target); `pool`: rating_pool
    rows (post_key, rating); `keys`/`vectors`: embeddings found for the labels' images."""
    embedded = pl.DataFrame({"image_key": keys}).with_row_index("row")
    rated = labels.join(pool.select("post_key", "rating"), on="post_key", how="left")
    joined = rated.join(embedded, on="image_key", how="left").sort("post_key")
    usable = joined.filter(pl.col("row").is_not_null())
    data = TrainingData(
        X=np.asarray(vectors[usable["row"].to_numpy()], np.float32),
        labels=usable["target"].to_numpy().astype(np.float64),
        sites=usable["site"].to_numpy(),
        ratings=usable["rating"].fill_null("?").to_numpy(),
        post_keys=usable["post_key"].to_numpy(),
    )
    missing = joined.filter(pl.col("row").is_null()).select("post_key", "image_key")
    return Joined(data, labels.height, missing)
