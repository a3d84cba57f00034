"""What the labels say about the labelers: counts, the label distribution, self-consistency
and pairwise agreement.

Every function takes the label store's events frame as `LabelStore.events()` returns it
(id, post_key, labeler, kind, value, undoes, created_at, client, source) and honours undos:
an undone label or skip counts nowhere. A labeler's *latest* label of a post is their vote
(manual_labels averages these); a label of a post the labeler
had labeled before is a hidden repeat, which measures self-consistency against their first
label and never adds a second vote.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from assets.labels.store import active

VALUES = (1, 2, 3, 4, 5)


def labels(events: pl.DataFrame) -> pl.DataFrame:
    """Active label events (no skips, nothing undone), in the order they were given."""
    return active(events).filter(pl.col("kind") == "label").sort("id")


def votes(events: pl.DataFrame) -> pl.DataFrame:
    """One vote per (labeler, post): the labeler's latest active label of it.

    Columns post_key, labeler, value, created_at.
    """
    return (
        labels(events)
        .group_by("labeler", "post_key", maintain_order=True)
        .agg(pl.col("value").last(), pl.col("created_at").last())
        .select("post_key", "labeler", "value", "created_at")
    )


def per_labeler(events: pl.DataFrame) -> pl.DataFrame:
    """Per labeler: labels, posts (distinct posts labeled), repeats, skips, undos, last_at.

    `labels` counts every active label, repeats included; `repeats` = labels - posts.
    """
    kept = active(events)
    per = kept.group_by("labeler").agg(
        labels=(pl.col("kind") == "label").sum(),
        posts=pl.col("post_key").filter(pl.col("kind") == "label").n_unique(),
        skips=(pl.col("kind") == "skip").sum(),
        last_at=pl.col("created_at").max(),
    )
    undos = events.filter(pl.col("kind") == "undo").group_by("labeler").agg(undos=pl.len())
    return (
        per.join(undos, on="labeler", how="full", coalesce=True)
        .with_columns(pl.col("labels", "posts", "skips", "undos").fill_null(0).cast(pl.Int64))
        .with_columns(repeats=pl.col("labels") - pl.col("posts"))
        .select("labeler", "labels", "posts", "repeats", "skips", "undos", "last_at")
        .sort("labeler")
    )


def label_distribution(events: pl.DataFrame) -> pl.DataFrame:
    """How often each value 1-5 is a vote (see votes), with its share of all votes."""
    given = votes(events)
    counts = dict(given.group_by("value").len().iter_rows())
    total = max(len(given), 1)
    rows = [(v, counts.get(v, 0), counts.get(v, 0) / total) for v in VALUES]
    schema = {"value": pl.Int64, "count": pl.Int64, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def self_consistency(events: pl.DataFrame) -> pl.DataFrame:
    """Per labeler, how their hidden repeats compare with their first label of the same post.

    Columns labeler, repeats (later labels of a post they had labeled), same (repeats with the
    first label's value), same_share and mean_abs_diff (null without repeats). Every labeler
    with a label has a row.
    """
    ordered = labels(events).with_columns(
        first=pl.col("value").first().over("labeler", "post_key", order_by="id"),
        nth=pl.int_range(pl.len()).over("labeler", "post_key", order_by="id"),
    )
    later = ordered.with_columns(is_repeat=pl.col("nth") > 0)
    return (
        later.group_by("labeler")
        .agg(
            repeats=pl.col("is_repeat").sum().cast(pl.Int64),
            same=(pl.col("is_repeat") & (pl.col("value") == pl.col("first"))).sum().cast(pl.Int64),
            abs_diff=(pl.col("value") - pl.col("first")).abs().filter(pl.col("is_repeat")).sum(),
        )
        .with_columns(
            same_share=_ratio(pl.col("same"), pl.col("repeats")),
            mean_abs_diff=_ratio(pl.col("abs_diff"), pl.col("repeats")),
        )
        .select("labeler", "repeats", "same", "same_share", "mean_abs_diff")
        .sort("labeler")
    )


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(None)


def agreement(events: pl.DataFrame) -> pl.DataFrame:
    """Per pair of labelers (labeler_a < labeler_b), agreement on the posts both voted on.

    Columns labeler_a, labeler_b, shared (posts), exact (same value), exact_share, and kappa
    (quadratic-weighted Cohen's kappa over values 1-5; null when undefined, e.g. when both
    gave one same value throughout). Pairs with no shared post have no row.
    """
    given = votes(events).select("post_key", "labeler", "value")
    pairs = (
        given.join(given, on="post_key", suffix="_b")
        .filter(pl.col("labeler") < pl.col("labeler_b"))
        .rename({"labeler": "labeler_a", "value": "value_a"})
        .group_by("labeler_a", "labeler_b")
        .agg("value_a", "value_b")
        .sort("labeler_a", "labeler_b")
    )
    rows = [_agreement(a, b, va, vb) for a, b, va, vb in pairs.iter_rows()]
    schema = {
        "labeler_a": pl.String,
        "labeler_b": pl.String,
        "shared": pl.Int64,
        "exact": pl.Int64,
        "exact_share": pl.Float64,
        "kappa": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _agreement(a: str, b: str, va: list[int], vb: list[int]) -> tuple:
    exact = sum(x == y for x, y in zip(va, vb, strict=True))
    return a, b, len(va), exact, exact / len(va), quadratic_kappa(va, vb)


def quadratic_kappa(
    a: Sequence[int], b: Sequence[int], values: Sequence[int] = VALUES
) -> float | None:
    """Cohen's kappa with quadratic weights between two raters' paired values.

    1 is perfect agreement, 0 what chance gives; None when chance alone explains every
    disagreement weight (no pairs, or both raters constant).
    """
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    n = observed.sum()
    if n == 0:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    grid = np.arange(k)
    weights = (grid[:, None] - grid[None, :]) ** 2 / (k - 1) ** 2
    chance = float((weights * expected).sum())
    if chance == 0:
        return None
    return 1.0 - float((weights * observed).sum()) / chance


def labels_per_hour(
    events: pl.DataFrame, labeler: str, now: datetime, window: timedelta = timedelta(minutes=15)
) -> float:
    """The labeler's recent pace: labels in the last `window`, over the time since the first
    of them (at least a minute, so two quick labels do not read as thousands an hour)."""
    recent = [
        t
        for t in map(
            datetime.fromisoformat,
            labels(events).filter(pl.col("labeler") == labeler)["created_at"].to_list(),
        )
        if now - t <= window
    ]
    if not recent:
        return 0.0
    span = max((now - min(recent)).total_seconds(), 60.0)
    return len(recent) * 3600.0 / span


def progress(events: pl.DataFrame, labeler: str, pool_keys: Collection[str], now: datetime) -> dict:
    """The labeler's progress through the pool: posts labeled and skipped (of the pool's
    posts), the pool's size, and labels per hour."""
    mine = active(events.filter(pl.col("labeler") == labeler))
    in_pool = mine.filter(pl.col("post_key").is_in(list(pool_keys)))
    labeled = in_pool.filter(pl.col("kind") == "label")["post_key"].n_unique()
    skipped = in_pool.filter(pl.col("kind") == "skip")["post_key"].n_unique()
    return {
        "labeler": labeler,
        "labeled": labeled,
        "skipped": skipped,
        "total": len(pool_keys),
        "per_hour": round(labels_per_hour(mine, labeler, now), 1),
    }


def summary(events: pl.DataFrame, pool_size: int) -> dict:
    """Everything the stats page shows, as JSON-ready lists of rows."""
    return {
        "pool_size": pool_size,
        "labeled_posts": votes(events)["post_key"].n_unique(),
        "labelers": per_labeler(events).to_dicts(),
        "distribution": label_distribution(events).to_dicts(),
        "self_consistency": self_consistency(events).to_dicts(),
        "agreement": agreement(events).to_dicts(),
    }
