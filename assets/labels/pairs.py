"""Pairwise preferences: "which of these two is better?", resolved per labeler and pair.

A pair is unordered ({a, b}); each labeler's latest choice on it counts (an undone choice does
not; a skip is not a choice). The resolved table, `manual_labels`' pairs.parquet
(`assets.labels.paths.pairs_path`), has one row per labeler and pair with the PAIRS columns:
`left_key` and `right_key` as that latest judgment showed them, its `outcome` (`left`,
`right` or `tie`) and `winner_key` (null for a tie).
"""

from __future__ import annotations

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
