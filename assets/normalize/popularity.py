"""How popular a post is, from whatever signals its site gives.

popularity = a weighted mean of three percentiles within the post's cohort:
- the Wilson lower bound of up / (up + down): approval, discounted for few votes;
- favourites;
- the net score.
A site without votes (Gelbooru) has only its score, so its popularity is that percentile.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from assets.normalize.percentile import mid_rank


def wilson_lower_bound(up: pl.Expr, down: pl.Expr, z: float) -> pl.Expr:
    """Lower bound of the Wilson score interval; 0 for a post without votes, null without
    vote counts at all."""
    n = (up + down).cast(pl.Float64)
    p = up / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * ((p * (1 - p) + z2 / (4 * n)) / n).sqrt()
    bound = (centre - margin) / (1 + z2 / n)
    return pl.when(up.is_null() | down.is_null()).then(None).when(n == 0).then(0.0).otherwise(bound)


def popularity(
    frame: pl.LazyFrame,
    groups: Sequence[str],
    reference: str,
    z: float,
    weights: dict[str, float],
) -> pl.LazyFrame:
    """Add `wilson` and `popularity` (a percentile blend in [0, 1])."""
    frame = frame.with_columns(
        wilson=wilson_lower_bound(pl.col("up_votes"), pl.col("down_votes"), z)
    )
    parts = {
        "wilson": weights["wilson"],
        "favorites": weights["favorites"],
        "score": weights["score"],
    }
    for column in parts:
        frame = mid_rank(frame, column, groups, reference, f"_pct_{column}")
    weighted = [pl.col(f"_pct_{c}").fill_null(0) * w for c, w in parts.items()]
    present = [pl.col(f"_pct_{c}").is_not_null().cast(pl.Float64) * w for c, w in parts.items()]
    total = pl.sum_horizontal(present)
    return frame.with_columns(
        popularity=pl.when(total > 0).then(pl.sum_horizontal(weighted) / total)
    ).drop([f"_pct_{c}" for c in parts])
