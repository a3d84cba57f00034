"""Mid-rank percentiles against a reference subset, within groups, vectorised.

For a value x in group g with reference values R (the mature, live posts of g):
    percentile(x) = (#{r in R : r < x} + 0.5 * #{r in R : r == x}) / |R|
Reference posts get the usual mid-rank percentile, so their percentiles are uniform on (0, 1)
up to ties; every other post (young, deleted) is placed against the same reference without
moving it.

One sort by (group, value), then counts from a running sum of the reference flag: the first
and last row of each run of equal values, and of each group, give every count in O(n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def _run_starts(starts: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its run (`starts` marks run starts)."""
    return np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))


def _run_ends(starts: np.ndarray) -> np.ndarray:
    """For each row, the index of the last row of its run."""
    first = np.flatnonzero(starts)
    last = np.append(first[1:] - 1, len(starts) - 1)
    return last[np.cumsum(starts) - 1]


def group_codes(frame: pl.DataFrame, groups: Sequence[str]) -> np.ndarray:
    """A dense integer code per row for its group (computed once, shared by every
    percentile of the same groups)."""
    hashes = frame.select(pl.struct(groups).hash()).to_series().to_numpy()
    return np.unique(hashes, return_inverse=True)[1].astype(np.int64)


def _order(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row order by (group, value), NaN last: one integer sort of code * n + the value's
    rank, which numpy does far faster than a sort on two keys."""
    n = len(values)
    by_value = np.empty(n, np.int64)
    by_value[np.argsort(values)] = np.arange(n)
    return np.argsort(codes * n + by_value)


def percentiles(codes: np.ndarray, values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The mid-rank percentile of each value within its group against the reference rows
    (NaN where the value is NaN or the group has no reference)."""
    n = len(values)
    if n == 0:
        return np.empty(0)
    order = _order(codes, values)
    group, sorted_values = codes[order], values[order]
    ref = (reference[order] & ~np.isnan(sorted_values)).astype(np.int64)
    cum = np.cumsum(ref)
    group_start = np.r_[True, group[1:] != group[:-1]]
    same_value = (sorted_values[1:] == sorted_values[:-1]) | (
        np.isnan(sorted_values[1:]) & np.isnan(sorted_values[:-1])
    )
    run_start = group_start | np.r_[True, ~same_value]
    base = (cum - ref)[_run_starts(group_start)]
    total = cum[_run_ends(group_start)] - base
    below = (cum - ref)[_run_starts(run_start)] - base
    equal = cum[_run_ends(run_start)] - base - below
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = (below + 0.5 * equal) / total
    pct[(total == 0) | np.isnan(sorted_values)] = np.nan
    result = np.empty(n)
    result[order] = pct
    return result


def column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN."""
    return frame[name].cast(pl.Float64).to_numpy()


def mid_rank(
    frame: pl.DataFrame,
    value: str,
    groups: Sequence[str],
    reference: str,
    out: str,
    codes: np.ndarray | None = None,
) -> pl.DataFrame:
    """Add column `out`: the percentile of `value` within `groups`, against rows where
    `reference` is true. Null where `value` is null or the group has no reference rows."""
    codes = group_codes(frame, groups) if codes is None else codes
    reference_rows = frame[reference].fill_null(False).to_numpy()
    pct = percentiles(codes, column(frame, value), reference_rows)
    return frame.with_columns(pl.Series(out, pct).fill_nan(None))
