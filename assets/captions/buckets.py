"""Score buckets: a score in [0, 1] becomes bucket 1..9 by eight cut-points, where buckets 2
to 9 start. Bucket 1 holds every score below the first.

Policies: `absolute` takes the cut-points as scores (the V6 reading: bucket N means "N/10
good and up"); `quantile` takes them as percentiles of the calibration scope's scores, so
with the default deciles score_9 is the top 10%, score_8 the next 10%, ... and score_1 the
bottom 20%. Either way a head's cut-points are worked out once and stored in the catalog's
`calibrations` table (one row per bucket, min_score where it starts), so the tags of a post
do not move when the catalog grows; a score takes the bucket with the largest min_score at
or below it, as `sql/queries/bucket_distribution.sql` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

BUCKETS = tuple(range(1, 10))
POLICIES = ("absolute", "quantile")
CALIBRATION_ROWS = {"bucket": pl.Int32, "min_score": pl.Float64, "max_score": pl.Float64}


def check_bucket(bucket: int, what: str = "bucket") -> int:
    if not isinstance(bucket, int) or not 1 <= bucket <= 9:
        raise ValueError(f"{what} must be an integer from 1 to 9, not {bucket!r}")
    return bucket


def starts_for(policy: str, cut_points: Sequence[float], scores: np.ndarray) -> np.ndarray:
    """Where buckets 2..9 start, as scores: eight strictly rising values.

    Quantile cut-points of tied scores are nudged up to the next float, so each bucket has
    its own start (the tied scores all fall in the lowest of them)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown bucket policy {policy!r}: choose {' or '.join(POLICIES)}")
    points = np.asarray(cut_points, np.float64)
    if (
        points.shape != (8,)
        or np.any(np.diff(points) <= 0)
        or not np.all((points > 0) & (points < 1))
    ):
        raise ValueError(f"cut points must be 8 rising values in (0, 1), not {list(cut_points)}")
    if policy == "absolute":
        return points
    if len(scores) == 0:
        raise ValueError("no scored image in the calibration scope: nothing to take quantiles of")
    starts = np.quantile(np.asarray(scores, np.float64), points)
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            starts[i] = np.nextafter(starts[i - 1], np.inf)
    return starts


def bucket_of(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each score's bucket (int32): 1 plus the number of starts at or below it."""
    return (np.searchsorted(starts, scores, side="right") + 1).astype(np.int32)


def shares(buckets: np.ndarray) -> list[float]:
    """The share of each bucket 1..9 (zeros when there is nothing)."""
    counts = np.bincount(buckets, minlength=10)[1:10]
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


@dataclass(frozen=True)
class Calibration:
    """A head's cut-points, and how they were made (for the manifest and the drift check)."""

    head_version: str
    starts: tuple[float, ...]  # where buckets 2..9 start, as scores
    created_at: datetime
    policy: str = "unknown"  # absolute, quantile, or unknown: rows stored by someone else
    cut_points: tuple[float, ...] = ()  # as configured: scores or percentiles
    scope: dict = field(default_factory=dict)  # sites and ratings the quantiles were taken over
    images: int = 0  # scored images in the scope then
    shares: tuple[float, ...] = ()  # the scope's share of each bucket then

    def rows(self) -> pl.DataFrame:
        """One `calibrations` row per bucket: bucket 1 from 0, bucket 9 up to 1."""
        low = [0.0, *self.starts]
        high = [*self.starts, max(1.0, self.starts[-1])]
        return pl.DataFrame(
            {"bucket": list(BUCKETS), "min_score": low, "max_score": high}, schema=CALIBRATION_ROWS
        )

    def record(self) -> dict:
        return {
            "head_version": self.head_version,
            "policy": self.policy,
            "cut_points": list(self.cut_points),
            "scope": self.scope,
            "images": self.images,
            "shares": list(self.shares),
            "starts": list(self.starts),
            "created_at": self.created_at.isoformat(),
        }

    def describe(self) -> dict:
        """What a manifest says about it: the bucket starts and where they came from."""
        return {
            **self.record(),
            "min_score": {str(b): s for b, s in zip(BUCKETS, [0.0, *self.starts], strict=True)},
        }


def starts_from_rows(rows: pl.DataFrame) -> tuple[float, ...]:
    """The starts of buckets 2..9 from stored rows (bucket, min_score)."""
    found = dict(zip(rows["bucket"].to_list(), rows["min_score"].to_list(), strict=True))
    if sorted(found) != list(BUCKETS):
        raise ValueError(f"a calibration needs a row for each bucket 1..9, found {sorted(found)}")
    return tuple(float(found[b]) for b in BUCKETS[1:])
