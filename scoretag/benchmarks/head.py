"""`scoretag bench head`: how many labels the aesthetic head needs, by how they are sampled.

On planted data (`assets.head.planted`: 50 styles of Dirichlet(0.3) sizes, quality known),
three samplers grow a labelled set from the pool, `step` labels at a time up to `budget`:

* random: uniform over the pool;
* stratified: by style, each in proportion to its share of the pool (as a curator would);
* active: the first `step` as random, then each batch from `uncertainty_round` (bootstrap
  ridge disagreement, round-robin over styles, no near-duplicates) on a random 20,000 of the
  remaining pool.

After each batch a ridge head is fitted to (label - 1) / 4 and scored by Spearman against the
fixed test set's labels (unclipped predictions: clipping to [0, 1] would only add ties).
`labels_to_target_*` is the first label count reaching 95% of random's Spearman at `budget`;
`active_over_random` is active's count over random's (below 1: active needs fewer labels).

Choices that keep it to a couple of minutes on two cores: every sampler's head keeps XᵀX and
Xᵀy and adds each batch to them instead of refitting; alpha is chosen once, by 5-fold
validation on the first 2,000 random labels, and used by every sampler and by the active
ensemble (with squared loss summed over rows the best alpha barely moves with the label count).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from assets.head.active import RidgeMoments, uncertainty_round
from assets.head.models import RIDGE_ALPHAS, to_target
from assets.head.planted import Planted, planted

ALPHA_LABELS = 2_000  # random labels the alpha is validated on
ALPHA_FOLDS = 5
CANDIDATES = 20_000  # pool rows the active sampler scores per round
STRATEGIES = ("random", "stratified", "active")


def _choose_alpha(data: Planted, rows: np.ndarray) -> float:
    """The alpha of RIDGE_ALPHAS with the lowest 5-fold validation MSE on `rows`."""
    y = to_target(data.labels[rows])
    folds = np.array_split(np.arange(len(rows)), ALPHA_FOLDS)
    total = RidgeMoments(data.X.shape[1])
    total.add(data.X[rows], y)
    parts = []
    for fold in folds:
        part = RidgeMoments(data.X.shape[1])
        part.add(data.X[rows[fold]], y[fold])
        parts.append(part)
    errors = np.zeros(len(RIDGE_ALPHAS))
    for fold, part in zip(folds, parts, strict=True):
        train = total.minus(part)
        held = data.X[rows[fold]].astype(np.float64)
        for a, alpha in enumerate(RIDGE_ALPHAS):
            w, b = train.solve(alpha)
            errors[a] += float(((held @ w + b - y[fold]) ** 2).sum())
    return RIDGE_ALPHAS[int(np.argmin(errors))]


def _stratified_order(cluster: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions 0..len(cluster)-1 ordered so that every prefix holds each cluster in proportion
    to its share (within one row): systematic sampling with a random start per cluster."""
    key = np.empty(len(cluster))
    for c in np.unique(cluster):
        members = rng.permutation(np.flatnonzero(cluster == c))
        key[members] = (np.arange(len(members)) + rng.uniform()) / len(members)
    shuffled = rng.permutation(len(cluster))  # random order among equal keys
    return shuffled[np.argsort(key[shuffled], kind="stable")]


def _grow(
    data: Planted,
    next_batch: Callable[[np.ndarray, int], np.ndarray],
    step: int,
    budget: int,
    alpha: float,
) -> list[list[float]]:
    """Label `step` rows at a time (chosen by `next_batch(labelled_rows, size)`) up to `budget`,
    refitting the head after each batch; [[labels, test Spearman], ...]."""
    head = RidgeMoments(data.X.shape[1])
    X_test = data.X[data.test_index]
    labels_test = data.labels[data.test_index]
    labelled = np.empty(0, np.int64)
    curve: list[list[float]] = []
    while len(labelled) < budget:
        batch = np.asarray(next_batch(labelled, min(step, budget - len(labelled))), np.int64)
        if len(batch) == 0:
            break
        head.add(data.X[batch], to_target(data.labels[batch]))
        labelled = np.concatenate([labelled, batch])
        w, b = head.solve(alpha)
        preds = X_test @ w.astype(np.float32) + b
        rho = float(stats.spearmanr(preds, labels_test)[0])
        curve.append([len(labelled), round(rho, 5)])
    return curve


def _active_sampler(
    data: Planted, first: np.ndarray, alpha: float, seed: int
) -> Callable[[np.ndarray, int], np.ndarray]:
    rng = np.random.default_rng((seed, 3))
    in_pool = np.zeros(len(data.X), bool)
    in_pool[data.pool_index] = True

    def next_batch(labelled: np.ndarray, size: int) -> np.ndarray:
        if len(labelled) == 0:
            return first[:size]
        remaining = in_pool.copy()
        remaining[labelled] = False
        rows = np.flatnonzero(remaining)
        if len(rows) > CANDIDATES:
            rows = np.sort(rng.choice(rows, CANDIDATES, replace=False))
        picked, _ = uncertainty_round(
            data.X[labelled],
            to_target(data.labels[labelled]),
            data.X[rows],
            data.cluster[rows],
            size,
            seed=int(rng.integers(2**31)),
            alpha=alpha,
        )
        return rows[picked]

    return next_batch


def _labels_to(curve: list[list[float]], target: float) -> int | None:
    return next((int(labels) for labels, rho in curve if rho >= target), None)


def sampling_curves(data: Planted, step: int, budget: int, seed: int = 0) -> dict:
    """Learning curves of the three samplers on `data`, and the labels each needs to reach 95%
    of random's Spearman at `budget`."""
    budget = min(budget, len(data.pool_index))
    rng = np.random.default_rng((seed, 1))
    random_order = rng.permutation(data.pool_index)
    stratified_order = data.pool_index[
        _stratified_order(data.cluster[data.pool_index], np.random.default_rng((seed, 2)))
    ]
    alpha = _choose_alpha(data, random_order[: min(ALPHA_LABELS, budget)])

    def take(order: np.ndarray) -> Callable[[np.ndarray, int], np.ndarray]:
        return lambda labelled, size: order[len(labelled) : len(labelled) + size]

    samplers = {
        "random": take(random_order),
        "stratified": take(stratified_order),
        "active": _active_sampler(data, random_order[:step], alpha, seed),
    }
    curves = {name: _grow(data, samplers[name], step, budget, alpha) for name in STRATEGIES}

    final = curves["random"][-1] if curves["random"] else None
    target = round(0.95 * final[1], 5) if final and final[0] == budget else None
    reached = {
        name: (_labels_to(curves[name], target) if target is not None else None)
        for name in STRATEGIES
    }
    ratio = None
    if reached["active"] is not None and reached["random"]:
        ratio = round(reached["active"] / reached["random"], 4)
    return {
        "alpha": alpha,
        "curves": curves,
        "target_spearman": target,
        **{f"labels_to_target_{name}": reached[name] for name in STRATEGIES},
        "active_over_random": ratio,
    }


def training_time(data: Planted, labels: int = 20_000, folds: int = 5, seed: int = 0) -> dict:
    """Seconds to cross-validate (K folds, ridge and constant baselines beside it) and fit
    the final MLP head with the default settings on `labels` planted items."""
    from assets.head.assets import train_settings
    from assets.head.train import TrainingData, cross_validate, fit_final
    from orchestration.settings import HeadSettings

    rows = data.pool_index[:labels]
    rng = np.random.default_rng(seed)
    items = TrainingData(
        X=data.X[rows],
        labels=data.labels[rows].astype(np.float64),
        sites=rng.choice(["danbooru", "e621", "derpibooru", "gelbooru"], len(rows)),
        ratings=rng.choice(["g", "s", "q", "e"], len(rows)),
        post_keys=np.array([f"planted:{i}" for i in rows]),
    )
    settings = train_settings(HeadSettings(folds=folds, seed=seed))
    started = time.perf_counter()
    cv = cross_validate(items, settings)
    fit_final(items, settings, cv)
    seconds = time.perf_counter() - started
    scores = cv.metrics(items)
    return {
        "train_labels": len(rows),
        "train_folds": folds,
        "train_seconds": round(seconds, 2),
        "train_best_epochs": cv.best_epochs,
        "train_cv_spearman_mlp": round(scores["head"]["overall"]["spearman"], 4),
        "train_cv_spearman_ridge": round(scores["ridge"]["overall"]["spearman"], 4),
    }


def head_bench(
    n: int = 60_000,
    dim: int = 768,
    test: int = 10_000,
    step: int = 250,
    budget: int = 10_000,
    seed: int = 0,
) -> dict:
    """Sampling strategies for the head's labels on planted data; JSON-serialisable figures."""
    started = time.perf_counter()
    data = planted(n=n, dim=dim, test=test, seed=seed)
    result = {"bench": "head", "n": n, "dim": dim, "test": test, "step": step, "budget": budget}
    result.update(sampling_curves(data, step=step, budget=budget, seed=seed))
    result.update(training_time(data, labels=min(20_000, len(data.pool_index)), seed=seed))
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result
