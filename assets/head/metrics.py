"""How well the aesthetic head's predictions agree with the human labels.

Predictions are scores in [0, 1]; labels are on the 1-5 rating scale and may be means of
several labelers (3.5, 2.667, ...). A prediction p sits at 1 + 4p on the label scale.
Everything here is plain numpy/scipy so it can be used outside Dagster (notebooks, benchmarks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

K = 5  # rating categories 1..5

# Labels that are means of several labelers come out of float arithmetic slightly off
# (10/3 vs 3.3333333333333335); grouping at this precision treats them as one value.
LABEL_DECIMALS = 9


def to_scale(p: ArrayLike) -> np.ndarray:
    """Map predictions in [0, 1] onto the 1-5 label scale (1 + 4p)."""
    return 1.0 + 4.0 * np.asarray(p, dtype=float)


def to_category(values: ArrayLike) -> np.ndarray:
    """Round values on the 1-5 scale to integer categories 1..5, halves rounding up.

    Half-up rather than numpy's half-to-even: a mean label of 2.5 and one of 3.5 should
    both move the same way, not to 2 and 4.
    """
    rounded = np.floor(np.asarray(values, dtype=float) + 0.5)
    return np.clip(rounded, 1, K).astype(np.int64)


def _pair(labels: ArrayLike, preds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(preds, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and preds differ in length: {y.size} vs {p.size}")
    return y, p


def mse(labels: ArrayLike, preds: ArrayLike) -> float:
    """Mean squared error on the 1-5 scale; nan for no items."""
    y, p = _pair(labels, preds)
    if y.size == 0:
        return math.nan
    return float(np.mean((to_scale(p) - y) ** 2))


def mae(labels: ArrayLike, preds: ArrayLike) -> float:
    """Mean absolute error on the 1-5 scale; nan for no items."""
    y, p = _pair(labels, preds)
    if y.size == 0:
        return math.nan
    return float(np.mean(np.abs(to_scale(p) - y)))


def _undefined_correlation(y: np.ndarray, p: np.ndarray) -> bool:
    # scipy returns nan here too, but with a ConstantInputWarning per call; report_by over
    # many groups would flood the logs.
    return y.size < 2 or bool(np.all(y == y[0])) or bool(np.all(p == p[0]))


def spearman(labels: ArrayLike, preds: ArrayLike) -> float:
    """Spearman rank correlation (ties get average ranks); nan when a side is constant."""
    y, p = _pair(labels, preds)
    if _undefined_correlation(y, p):
        return math.nan
    return float(stats.spearmanr(y, p).statistic)


def kendall_tau_b(labels: ArrayLike, preds: ArrayLike) -> float:
    """Kendall's tau-b (tie-corrected); nan when a side is constant."""
    y, p = _pair(labels, preds)
    if _undefined_correlation(y, p):
        return math.nan
    return float(stats.kendalltau(y, p, variant="b").statistic)


def pairwise_accuracy(labels: ArrayLike, preds: ArrayLike) -> float:
    """Share of differently-labelled pairs that the predictions order the same way.

    Over all pairs of items with different labels, a pair scores 1 when the item with the
    higher label has the higher prediction and 0.5 when the predictions tie. nan when there
    are no such pairs. O(n log n) in the items (times the number of distinct labels, which
    is small on a 1-5 scale), so n = 60,000 is fine.
    """
    y, p = _pair(labels, preds)
    levels, group = np.unique(np.round(y, LABEL_DECIMALS), return_inverse=True)
    sizes = np.bincount(group, minlength=levels.size)
    # Pairs with different labels = all pairs - pairs within a label group.
    total = (y.size * (y.size - 1) - int(np.sum(sizes * (sizes - 1)))) // 2
    if total == 0:
        return math.nan
    # Walk the label groups upwards, keeping the predictions of every lower group merged in
    # one sorted array: each group then needs one searchsorted against all of its lower
    # groups at once, instead of one per pair of groups.
    lower = np.empty(0, dtype=float)
    score = 0.0
    for g in range(levels.size):
        mine = np.sort(p[group == g])
        below = np.searchsorted(lower, mine, side="left")
        below_or_tied = np.searchsorted(lower, mine, side="right")
        score += float(np.sum(below)) + 0.5 * float(np.sum(below_or_tied - below))
        lower = np.insert(lower, below, mine)  # a linear-time merge; `below` is sorted
    return score / total


def quadratic_weighted_kappa(labels: ArrayLike, preds: ArrayLike) -> float:
    """Cohen's kappa with quadratic weights between label and prediction categories 1..5.

    Labels round to categories as they are; predictions as 1 + 4p (halves up, clipped to
    1..5). nan when undefined: no items, or no disagreement is expected by chance (both
    sides put everything in one category).
    """
    y, p = _pair(labels, preds)
    if y.size == 0:
        return math.nan
    rows = to_category(y) - 1
    cols = to_category(to_scale(p)) - 1
    observed = np.bincount(rows * K + cols, minlength=K * K).reshape(K, K).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / y.size
    i, j = np.indices((K, K))
    weights = (i - j) ** 2 / (K - 1) ** 2
    chance = float(np.sum(weights * expected))
    if chance == 0.0:
        return math.nan
    return 1.0 - float(np.sum(weights * observed)) / chance


def report(labels: ArrayLike, preds: ArrayLike) -> dict[str, Any]:
    """Every metric for one set of items: n (int) and the rest as floats (nan if undefined)."""
    y, p = _pair(labels, preds)
    return {
        "n": int(y.size),
        "mse": mse(y, p),
        "mae": mae(y, p),
        "spearman": spearman(y, p),
        "kendall_tau_b": kendall_tau_b(y, p),
        "pairwise_accuracy": pairwise_accuracy(y, p),
        "qwk": quadratic_weighted_kappa(y, p),
    }


def report_by(
    labels: ArrayLike, preds: ArrayLike, groups: np.ndarray, min_n: int = 10
) -> dict[str, dict[str, Any]]:
    """The report per distinct group value (keyed by str(value)), in sorted group order.

    Groups with fewer than min_n items are left out: their correlations are mostly noise.
    """
    y, p = _pair(labels, preds)
    g = np.asarray(groups).ravel()
    if g.shape != y.shape:
        raise ValueError(f"groups and labels differ in length: {g.size} vs {y.size}")
    values, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    out: dict[str, dict[str, Any]] = {}
    for index, value in enumerate(values):
        if counts[index] < min_n:
            continue
        members = inverse == index
        out[str(value)] = report(y[members], p[members])
    return out


def calibration(labels: ArrayLike, preds: ArrayLike) -> list[dict[str, Any]]:
    """Per rounded label 1..5 that occurs: its n and the mean and std of the predictions.

    mean_prediction and std are on the 1-5 scale; std is the population std (ddof=0), so a
    single item gives 0 rather than nan.
    """
    y, p = _pair(labels, preds)
    categories = to_category(y)
    scaled = to_scale(p)
    rows: list[dict[str, Any]] = []
    for label in range(1, K + 1):
        members = scaled[categories == label]
        if members.size == 0:
            continue
        rows.append(
            {
                "label": label,
                "n": int(members.size),
                "mean_prediction": float(np.mean(members)),
                "std": float(np.std(members)),
            }
        )
    return rows
