"""manual_labels joined with the embeddings of the active backbone: what a head trains on.

Labels (and pairs) whose image has no embedding (not embedded yet, or unusable) are counted,
never dropped silently; the pool gives each post's rating, for the per-rating metrics, and
the image of a post seen only in pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from assets.head.pairs import LOST, TIE, WON, Pairs
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


OUTCOME_CODES = {"left": WON, "right": LOST, "tie": TIE}


@dataclass(frozen=True)
class JoinedPairs:
    pairs: Pairs
    rows: int  # judgments in pairs.parquet
    without_embedding: int  # judgments left out: a post of theirs has no embedding


def join_pairs(
    frame: pl.DataFrame,
    data: TrainingData,
    pool: pl.DataFrame,
    lookup: Callable[[pl.Series], tuple[pl.Series, np.ndarray]],
) -> JoinedPairs:
    """manual_labels' pairs (PAIRS rows) over the rated items of `data` and, for posts seen
    only in pairs, the pool's rows (post_key, site, image_key) and their embeddings by
    `lookup` (image keys -> the keys found and their vectors). A judgment whose post has no
    embedding (or is not in the pool) is counted and left out."""
    frame = frame.sort("left_key", "right_key", "labeler")
    rated = {str(k): i for i, k in enumerate(data.post_keys)}
    posts = pl.concat([frame["left_key"], frame["right_key"]]).unique().sort()
    extra = (
        pl.DataFrame({"post_key": posts.filter(~posts.is_in(list(rated)))})
        .join(pool.select("post_key", "site", "image_key"), on="post_key", how="inner")
        .sort("post_key")
    )
    keys, vectors = lookup(extra["image_key"])
    found = pl.DataFrame({"image_key": keys}).with_row_index("row")
    extra = extra.join(found, on="image_key", how="inner").sort("post_key")
    index = dict(rated)
    index.update({k: len(rated) + i for i, k in enumerate(extra["post_key"])})
    first = np.array([index.get(k, -1) for k in frame["left_key"]], np.int64)
    second = np.array([index.get(k, -1) for k in frame["right_key"]], np.int64)
    usable = (first >= 0) & (second >= 0)
    outcome = np.array([OUTCOME_CODES[o] for o in frame["outcome"]], np.float64)
    dim = np.asarray(data.X).shape[1] if np.asarray(data.X).ndim == 2 else vectors.shape[-1]
    pairs = Pairs(
        first=first[usable],
        second=second[usable],
        outcome=outcome[usable],
        labelers=frame["labeler"].to_numpy()[usable],
        X=np.asarray(vectors[extra["row"].to_numpy()], np.float32).reshape(-1, dim),
        post_keys=extra["post_key"].to_numpy(),
        sites=extra["site"].to_numpy(),
    )
    return JoinedPairs(pairs, frame.height, int((~usable).sum()))
