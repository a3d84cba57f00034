"""Drawing a stratified round of the rating pool.

Strata are site x rating x norm_score decile x style. A round gives every non-empty stratum
its minimum quota first (so rare styles are present; the rarest strata first, if the round is
too small for all), then shares what is left of the round in proportion to how many eligible
posts each stratum still has (largest remainders). Within
a stratum, posts are drawn by a seeded random priority over the posts sorted by key, so the
same eligible posts, seed and round always give the same draw.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def quotas(strata: pl.DataFrame, round_size: int, minimum: int) -> pl.DataFrame:
    """`strata` has stratum, total (eligible, pooled or not), pooled and available (eligible,
    not yet pooled). Returns stratum and quota (posts to draw this round, `round_size` in
    all at most).

    Strata below min(minimum, total) are topped up first, the rarest first when the round
    cannot top up every one; the rest of the round is shared in proportion to availability.
    """
    short = strata.with_columns(
        floor=(pl.min_horizontal(pl.lit(minimum), "total") - pl.col("pooled"))
        .clip(0, None)
        .clip(None, pl.col("available"))
    ).sort("total", "stratum")
    floor = short["floor"].to_numpy()
    kept = np.minimum(np.cumsum(floor), max(round_size, 0))
    floor = np.diff(kept, prepend=0)  # the rarest strata keep their minimum first
    room = short["available"].to_numpy() - floor
    share = _largest_remainder(room, min(max(round_size - int(floor.sum()), 0), int(room.sum())))
    return short.select("stratum", quota=pl.Series(floor + share, dtype=pl.Int64))


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to weights, summing to total, none above its weight."""
    if total <= 0 or weights.sum() == 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = weights * (total / weights.sum())
    share = np.minimum(np.floor(exact).astype(np.int64), weights)
    remainder = exact - share
    for i in np.argsort(-remainder, kind="stable")[: total - share.sum()]:
        share[i] += 1
    return share


def draw(
    available: pl.DataFrame, quota: pl.DataFrame, seed: int, round_number: int
) -> pl.DataFrame:
    """The rows of `available` (stratum, post_key, ...) this round picks."""
    ordered = available.sort("stratum", "post_key")
    rng = np.random.default_rng([seed, round_number])
    ranked = ordered.with_columns(_priority=pl.Series(rng.random(ordered.height))).with_columns(
        _rank=pl.col("_priority").rank("ordinal").over("stratum")
    )
    picked = ranked.join(quota, on="stratum").filter(pl.col("_rank") <= pl.col("quota"))
    return picked.drop("_priority", "_rank")
