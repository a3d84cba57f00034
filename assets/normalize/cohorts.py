"""Cohorts: the posts a post is compared with.

A cohort is (site, rating, upload period): popularity grows with a site's traffic and
differs by rating, so a post is ranked only against posts of its own site, rating and era.
A period with fewer than `min_size` reference posts is pooled with the other small periods
of its site and rating, so no post is ranked against a handful of others.

Maturity: votes keep arriving for weeks after upload, so posts younger than `maturity_days`
at the moment their file was taken are `immature`. They and deleted posts are left out of the
reference distribution, and get a percentile against it that is marked provisional.
"""

from __future__ import annotations

import polars as pl

DAY_US = 86_400_000_000


def snapshots(files: pl.LazyFrame) -> pl.LazyFrame:
    """When each raw file was taken: the newest timestamp it holds."""
    stamp = pl.coalesce("updated_at", "created_at")
    return files.group_by("source_file").agg(snapshot_at=stamp.max())


def maturity(frame: pl.DataFrame, maturity_days: int) -> pl.DataFrame:
    age = (pl.col("snapshot_at") - pl.col("created_at")).dt.total_microseconds() / DAY_US
    return frame.with_columns(age_days=age).with_columns(
        immature=pl.col("age_days") < maturity_days,
        in_reference=(pl.col("age_days") >= maturity_days) & ~pl.col("is_deleted").fill_null(False),
    )


def assign(frame: pl.DataFrame, period: str, min_size: int) -> pl.DataFrame:
    """Add `period` (its start date, as text) and `cohort` (the period, or "pooled")."""
    frame = frame.with_columns(
        period=pl.col("created_at").dt.truncate(period).cast(pl.Date).cast(pl.String)
    )
    sizes = pl.col("in_reference").cast(pl.Int64).sum().over("site", "rating", "period")
    return frame.with_columns(
        cohort=pl.when(sizes >= min_size).then(pl.col("period")).otherwise(pl.lit("pooled"))
    )
