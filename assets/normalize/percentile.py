"""Mid-rank percentiles against a reference subset, within groups, vectorised.

For a value x in group g with reference values R (the mature, live posts of g):
    percentile(x) = (#{r in R : r < x} + 0.5 * #{r in R : r == x}) / |R|
Reference posts get the usual mid-rank percentile, so their percentiles are uniform on (0, 1)
up to ties; every other post (young, deleted) is placed against the same reference without
moving it.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def mid_rank(
    frame: pl.LazyFrame, value: str, groups: Sequence[str], reference: str, out: str
) -> pl.LazyFrame:
    """Add column `out`: the percentile of `value` within `groups`, against rows where
    `reference` is true. Null where `value` is null or the group has no reference rows."""
    keys = [*groups, value]
    ref = pl.col(reference).cast(pl.Int64)
    levels = (
        frame.filter(pl.col(value).is_not_null())
        .group_by(keys)
        .agg(_at=ref.sum())
        .sort(keys)
        .with_columns(
            _below=pl.col("_at").cum_sum().over(groups) - pl.col("_at"),
            _n=pl.col("_at").sum().over(groups),
        )
        .with_columns(
            pl.when(pl.col("_n") > 0)
            .then((pl.col("_below") + 0.5 * pl.col("_at")) / pl.col("_n"))
            .alias(out)
        )
        .select(*keys, out)
    )
    return frame.join(levels, on=keys, how="left", nulls_equal=True)
