"""How popular a post is, from whatever signals its site gives.

popularity = a weighted mean of three percentiles within the post's cohort:
- the Wilson lower bound of up / (up + down): approval, discounted for few votes;
- favourites;
- the net score.
A site without votes (Gelbooru) has only its score, so its popularity is that percentile.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from assets.normalize.percentile import column, percentiles


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
    frame: pl.DataFrame,
    codes: np.ndarray,
    reference: str,
    z: float,
    weights: dict[str, float],
) -> pl.DataFrame:
    """Add `wilson` and `popularity` (a percentile blend in [0, 1]); `codes` are the rows'
    cohorts (see percentile.group_codes)."""
    frame = frame.with_columns(
        wilson=wilson_lower_bound(pl.col("up_votes"), pl.col("down_votes"), z)
    )
    reference_rows = frame[reference].fill_null(False).to_numpy()
    blend, present = np.zeros(frame.height), np.zeros(frame.height)
    names = ("wilson", "favorites", "score")
    # numpy sorts without the GIL: the three percentiles run side by side.
    with ThreadPoolExecutor(len(names)) as pool:
        parts = pool.map(lambda n: percentiles(codes, column(frame, n), reference_rows), names)
    for name, pct in zip(names, parts, strict=True):
        known = ~np.isnan(pct)
        blend[known] += weights[name] * pct[known]
        present[known] += weights[name]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(present > 0, blend / present, np.nan)
    return frame.with_columns(pl.Series("popularity", value).fill_nan(None))
