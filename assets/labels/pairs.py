"""Pairwise preferences: "which of these two is better?", resolved per labeler and pair.

A pair is unordered ({a, b}); each labeler's latest choice on it counts (an undone choice does
not; a skip is not a choice). The resolved table, `manual_labels`' pairs.parquet
(`assets.labels.paths.pairs_path`), has one row per labeler and pair with the PAIRS columns:
`left_key` and `right_key` as that latest judgment showed them, its `outcome` (`left`,
`right` or `tie`) and `winner_key` (null for a tie).
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

OUTCOMES = ("left", "right", "tie")
PAIRS: dict[str, pl.DataType] = {
    "left_key": pl.String,  # post_key shown on the left in the latest judgment
    "right_key": pl.String,
    "outcome": pl.String,  # one of OUTCOMES
    "winner_key": pl.String,  # null for a tie
    "labeler": pl.String,
    "judgments": pl.Int64,  # the labeler's counted judgments of this pair (hidden repeats too)
    "created_at": pl.String,  # ISO time of the latest judgment
    "in_pool": pl.Boolean,  # both posts are in the rating pool
}


def resolve_pairs(events: pl.DataFrame, pool_keys: Collection[str]) -> pl.DataFrame:
    """The PAIRS table from the store's pair events (LabelStore.pair_events): one row per
    labeler and unordered pair, as the labeler's latest standing choice showed it."""
    from assets.labels.pair_stats import choices

    made = choices(events)
    counted = made.group_by("labeler", "pair", maintain_order=True).agg(
        pl.col("left_key", "right_key", "choice", "winner", "created_at").last(),
        judgments=pl.len(),
    )
    keys = list(pool_keys)
    return counted.select(
        pl.col("left_key"),
        pl.col("right_key"),
        pl.col("choice").alias("outcome"),
        pl.when(pl.col("choice") == "tie")
        .then(None)
        .otherwise(pl.col("winner"))
        .alias("winner_key"),
        pl.col("labeler"),
        pl.col("judgments"),
        pl.col("created_at"),
        (pl.col("left_key").is_in(keys) & pl.col("right_key").is_in(keys)).alias("in_pool"),
    ).select([pl.col(c).cast(t) for c, t in PAIRS.items()])
