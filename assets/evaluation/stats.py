"""Statistics of one evaluation set (the images a checkpoint generated, scored), and of the
difference between two sets, with how sure we can be of it.

The metrics of a set:
- score_mean, score_p10, score_p50, score_p90: the mean and percentiles of the aesthetic
  head's scores in [0, 1]. The low percentile says how bad the bad images are, which a mean
  hides.
- good_rate: the share of images in bucket `good_bucket` or higher (1..9, as the captions
  tag them); only for a head with a calibration, which gives every image a bucket.
- clip_score: the mean CLIP score (2.5 * max(cos, 0)) over the images that have a prompt:
  how well the images follow their prompts.
- diversity: per group (a prompt, or a folder), the mean pairwise cosine distance (1 - cos)
  among its images' embeddings; a set's diversity is the mean over its groups of two or more
  images. A checkpoint that draws the same picture for every seed scores near 0.

Comparing two sets, every difference is other minus base, with a percentile bootstrap
confidence interval: resample the units, recompute the metric, and take the middle
`confidence` of the resampled differences. The percentile bootstrap needs no assumption about
the shape of the scores (bounded, skewed, bimodal) and works as well for percentiles as for
means, where a normal interval would need a formula per metric.

Paired or unpaired: when the sets share at least MIN_PAIRS pair_keys (the same prompt and
seed under two checkpoints), each per-image metric is compared on the shared pairs only and
the pairs are resampled jointly (one index draw applied to both sets). What the prompt and
seed contribute to a score then cancels in the difference, so the interval is much narrower
than resampling each set on its own, which is what happens otherwise. Diversity is a
per-group metric, so its units are groups: paired on the shared groups of two or more images
when there are MIN_PAIRS of them, else resampled independently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl

from assets.captions.buckets import BUCKETS, shares

METRICS: tuple[str, ...] = (
    "score_mean",
    "score_p10",
    "score_p50",
    "score_p90",
    "good_rate",
    "clip_score",
    "diversity",
)
# Fewer shared keys than this and the pairs are too few to stand for the sets: resample each
# set on its own instead.
MIN_PAIRS = 10
# Entries of the bootstrap index matrix drawn at once (int64 indices and the gathered float64
# values: about 320 MB); more resamples are drawn in chunks.
MAX_DRAWS = 20_000_000
DECIMALS = 4

COMPARISON_SCHEMA = {
    "metric": pl.String,
    "base": pl.Float64,
    "other": pl.Float64,
    "difference": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "paired": pl.Boolean,
    "n_base": pl.Int64,
    "n_other": pl.Int64,
    "n_pairs": pl.Int64,
    "excludes_zero": pl.Boolean,
}

# A metric from the values of its units, row by row: (resamples, units) -> (resamples,).
Stat = Callable[[np.ndarray], np.ndarray]


def _mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=1)


def _quantile(values: np.ndarray, q: float) -> np.ndarray:
    return np.quantile(values, q, axis=1)


STATS: dict[str, Stat] = {
    "score_mean": _mean,
    "score_p10": partial(_quantile, q=0.1),
    "score_p50": partial(_quantile, q=0.5),
    "score_p90": partial(_quantile, q=0.9),
    "good_rate": _mean,
    "clip_score": _mean,
    "diversity": _mean,
}


def diversity(vectors: np.ndarray, groups: pl.Series) -> pl.DataFrame:
    """Per group (sorted): its images and their mean pairwise cosine distance, null for one.

    O(n * d): over the ordered pairs i != j of a group, sum(v_i . v_j) = ||sum v||^2 -
    sum ||v_i||^2, so the group sums of the vectors are all that is needed."""
    v = np.asarray(vectors, np.float64)
    if v.ndim != 2 or len(v) != len(groups):
        raise ValueError(f"need one vector per row: {v.shape} vectors for {len(groups)} rows")
    # Unit length again in float64: float32 unit vectors are off by ~1e-7, which would show
    # as a diversity of ~1e-9 among identical images.
    length = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.divide(v, length, out=np.zeros_like(v), where=length > 0)
    names, inverse, counts = np.unique(groups.to_numpy(), return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    sums = np.add.reduceat(v[order], starts, axis=0) if len(v) else np.zeros((0, v.shape[1]))
    norms = np.bincount(inverse, weights=np.einsum("ij,ij->i", v, v), minlength=len(names))
    pairs = counts * (counts - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_cos = (np.einsum("ij,ij->i", sums, sums) - norms) / pairs
    # Rounding can take identical vectors a hair below 0.
    distance = np.where(pairs > 0, np.clip(1.0 - mean_cos, 0.0, 2.0), np.nan)
    return pl.DataFrame(
        {"group": names.astype(str), "images": counts, "diversity": distance},
        schema={"group": pl.String, "images": pl.Int64, "diversity": pl.Float64},
    ).with_columns(pl.col("diversity").fill_nan(None))


def _check(rows: pl.DataFrame, vectors: np.ndarray) -> None:
    if len(vectors) != rows.height:
        raise ValueError(f"need one vector per row: {len(vectors)} vectors for {rows.height} rows")


def _has_buckets(rows: pl.DataFrame) -> bool:
    return rows.height > 0 and rows["bucket"].null_count() == 0


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), DECIMALS)


def set_summary(rows: pl.DataFrame, vectors: np.ndarray, good_bucket: int = 7) -> dict:
    """The metrics of one set, as plain JSON-ready numbers (None where there is nothing)."""
    _check(rows, vectors)
    scores = rows["score"].to_numpy().astype(np.float64)
    p10, p50, p90 = np.quantile(scores, [0.1, 0.5, 0.9]) if len(scores) else [None] * 3
    buckets = rows["bucket"].to_numpy().astype(np.int64) if _has_buckets(rows) else None
    clip = rows["clip_score"].drop_nulls()
    groups = diversity(vectors, rows["group"])
    return {
        "images": rows.height,
        "score_mean": _rounded(scores.mean()) if len(scores) else None,
        "score_p10": _rounded(p10),
        "score_p50": _rounded(p50),
        "score_p90": _rounded(p90),
        "bucket_shares": None
        if buckets is None
        else {str(b): _rounded(s) for b, s in zip(BUCKETS, shares(buckets), strict=True)},
        "good_rate": None if buckets is None else _rounded(np.mean(buckets >= good_bucket)),
        "clip_score": _rounded(clip.mean()) if len(clip) else None,
        "prompted_images": len(clip),
        "diversity": _rounded(groups["diversity"].mean()),
        "groups": groups.height,
    }


def prompt_table(rows: pl.DataFrame, vectors: np.ndarray, good_bucket: int = 7) -> pl.DataFrame:
    """One row per group, sorted: its images, score mean and median, good rate (null without
    buckets), mean CLIP score (null without prompts) and diversity (null for one image)."""
    _check(rows, vectors)
    table = rows.group_by("group").agg(
        pl.len().cast(pl.Int64).alias("images"),
        pl.col("score").mean().alias("score_mean"),
        pl.col("score").median().alias("score_p50"),
        (pl.col("bucket") >= good_bucket).cast(pl.Float64).mean().alias("good_rate"),
        pl.col("clip_score").mean().alias("clip_score"),
    )
    spread = diversity(vectors, rows["group"]).select("group", "diversity")
    return table.join(spread, on="group", how="left").sort("group")


@dataclass(frozen=True)
class _Family:
    """Metrics that share one bootstrap draw: each metric's values per unit in each set,
    aligned unit by unit when paired."""

    base: dict[str, np.ndarray]
    other: dict[str, np.ndarray]
    paired: bool
    pairs: int

    def sizes(self) -> tuple[int, int]:
        first = next(iter(self.base))
        return len(self.base[first]), len(self.other[first])


def _shared(base_keys: pl.Series, other_keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Positions in each side of the keys both share (first occurrence), in key order."""
    base = pl.DataFrame({"key": base_keys, "b": np.arange(len(base_keys))})
    other = pl.DataFrame({"key": other_keys, "o": np.arange(len(other_keys))})
    joined = (
        base.unique("key", keep="first")
        .join(other.unique("key", keep="first"), on="key", how="inner")
        .sort("key")
    )
    return joined["b"].to_numpy(), joined["o"].to_numpy()


def _family(
    base: dict[str, np.ndarray],
    base_keys: pl.Series,
    other: dict[str, np.ndarray],
    other_keys: pl.Series,
) -> _Family:
    """Paired on the shared keys when there are MIN_PAIRS of them, else unpaired."""
    b, o = _shared(base_keys, other_keys)
    if len(b) < MIN_PAIRS:
        return _Family(base, other, paired=False, pairs=0)
    return _Family(
        {m: v[b] for m, v in base.items()},
        {m: v[o] for m, v in other.items()},
        paired=True,
        pairs=len(b),
    )


def _families(
    base: pl.DataFrame,
    base_vectors: np.ndarray,
    other: pl.DataFrame,
    other_vectors: np.ndarray,
    good_bucket: int,
) -> Iterator[_Family]:
    """The metric families both sets can compute: per image (scores, good rate), per
    prompted image (CLIP score), per group of two or more images (diversity)."""
    if base.height and other.height:
        values = [
            {m: r["score"].to_numpy().astype(np.float64) for m in METRICS[:4]}
            for r in (base, other)
        ]
        if _has_buckets(base) and _has_buckets(other):
            for v, r in zip(values, (base, other), strict=True):
                v["good_rate"] = (r["bucket"].to_numpy() >= good_bucket).astype(np.float64)
        yield _family(values[0], base["pair_key"], values[1], other["pair_key"])
    prompted = [r.filter(pl.col("clip_score").is_not_null()) for r in (base, other)]
    if all(p.height for p in prompted):
        clips = [{"clip_score": p["clip_score"].to_numpy().astype(np.float64)} for p in prompted]
        yield _family(clips[0], prompted[0]["pair_key"], clips[1], prompted[1]["pair_key"])
    spreads = [
        diversity(v, r["group"]).drop_nulls("diversity")
        for r, v in ((base, base_vectors), (other, other_vectors))
    ]
    if all(s.height for s in spreads):
        values = [{"diversity": s["diversity"].to_numpy()} for s in spreads]
        yield _family(values[0], spreads[0]["group"], values[1], spreads[1]["group"])


def _draws(rng: np.random.Generator, n: int, resamples: int, step: int) -> Iterator[np.ndarray]:
    """The bootstrap index matrix (resamples x n), `step` resamples at a time."""
    for start in range(0, resamples, step):
        yield rng.integers(0, n, size=(min(step, resamples - start), n))


def _step(units: int) -> int:
    return max(1, MAX_DRAWS // max(units, 1))


def _bootstrap(family: _Family, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Each metric's resampled differences, other minus base. A fresh generator per family,
    so a metric's interval does not depend on which other metrics the sets have."""
    rng = np.random.default_rng(seed)
    n_base, n_other = family.sizes()
    step = _step(n_base if family.paired else n_base + n_other)
    base_draws = _draws(rng, n_base, resamples, step)
    if family.paired:
        chunks = ((idx, idx) for idx in base_draws)
    else:
        chunks = zip(base_draws, _draws(rng, n_other, resamples, step), strict=True)
    found: dict[str, list[np.ndarray]] = {m: [] for m in family.base}
    for base_idx, other_idx in chunks:
        for metric, parts in found.items():
            stat = STATS[metric]
            parts.append(
                stat(family.other[metric][other_idx]) - stat(family.base[metric][base_idx])
            )
    return {metric: np.concatenate(parts) for metric, parts in found.items()}


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def compare(
    base: pl.DataFrame,
    base_vectors: np.ndarray,
    other: pl.DataFrame,
    other_vectors: np.ndarray,
    good_bucket: int = 7,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per metric both sets can compute, in METRICS order: the metric in each set (on
    the units the difference was computed on), other minus base, and its bootstrap interval."""
    _check(base, base_vectors)
    _check(other, other_vectors)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    rows = []
    for family in _families(base, base_vectors, other, other_vectors, good_bucket):
        n_base, n_other = family.sizes()
        for metric, draws in _bootstrap(family, resamples, seed).items():
            low, high = _interval(draws, confidence)
            b = float(STATS[metric](family.base[metric][None, :])[0])
            o = float(STATS[metric](family.other[metric][None, :])[0])
            rows.append(
                {
                    "metric": metric,
                    "base": b,
                    "other": o,
                    "difference": o - b,
                    "low": low,
                    "high": high,
                    "paired": family.paired,
                    "n_base": n_base,
                    "n_other": n_other,
                    "n_pairs": family.pairs,
                    "excludes_zero": low > 0 or high < 0,
                }
            )
    rows.sort(key=lambda row: METRICS.index(row["metric"]))
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def undecided(comparisons: pl.DataFrame) -> bool:
    """True when no difference's interval excludes zero: the sets are too small to tell the
    two apart on any metric. Each interval misses a true zero 1 - confidence of the time, so
    with several metrics one of them excluding zero by chance is not rare."""
    return not comparisons["excludes_zero"].any()


def score_resolution(
    rows: pl.DataFrame, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> float:
    """Half the width of the bootstrap interval of the set's mean score: differences in mean
    score much smaller than this, one set of this size cannot see. nan for an empty set."""
    scores = rows["score"].to_numpy().astype(np.float64)
    if len(scores) == 0:
        return math.nan
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            scores[idx].mean(axis=1)
            for idx in _draws(rng, len(scores), resamples, _step(len(scores)))
        ]
    )
    low, high = _interval(means, confidence)
    return (high - low) / 2
