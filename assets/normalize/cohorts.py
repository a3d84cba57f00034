"""Cohorts: the posts a post is compared with.

A cohort is (site, rating, upload period): popularity grows with a site's traffic and
differs by rating, so a post is ranked only against posts of its own site, rating and era.
A period with fewer than `min_size` reference posts is pooled with the other small periods
of its site and rating, so no post is ranked against a handful of others.

Maturity: votes keep arriving for weeks after upload, so posts younger than `maturity_days`
at the moment their file was taken are `immature`. They and deleted posts are left out of the
reference distribution, and get a percentile against it that is marked provisional. The
period, the age and maturity are worked out in SQL as the rows are read
(sql/normalize/current.sql); the cohort here, from whole groups (site, rating, period).
"""

from __future__ import annotations

import polars as pl

POOLED = "pooled"


def assign(frame: pl.DataFrame, min_size: int) -> pl.DataFrame:
    """Add `cohort`: the post's period, or "pooled" when its (site, rating, period) has fewer
    than `min_size` reference posts. `frame` must hold whole groups."""
    sizes = pl.col("in_reference").cast(pl.Int64).sum().over("site", "rating", "period")
    return frame.with_columns(
        cohort=pl.when(sizes >= min_size).then(pl.col("period")).otherwise(pl.lit(POOLED))
    )
