"""Active learning for the aesthetic head: which unlabelled images to send to labelers next.

A bootstrap ensemble of ridge heads scores each candidate by how much its members disagree
(query by committee); the next batch takes the most disputed candidates, spread round-robin
over strata (styles) so one confusing style cannot take the whole batch, and never two
near-duplicates (nor a near-duplicate of something already labelled).

Plain numpy, no Dagster. The ensemble's ridge is solved from running moments with a fixed
alpha (`models.fit_ridge` chooses alpha by leave-one-out, several times the cost per member).
"""

from __future__ import annotations

import numpy as np

DEFAULT_ALPHA = 1.0
"""Ridge penalty of the ensemble members, for unit-norm embeddings and targets in [0, 1]."""

LOOKAHEAD = 256
"""Candidates checked for near-duplicates per round of `select_uncertain`, over all strata."""

EXCLUDE_BLOCK = 16_384
"""Rows of `exclude_like` compared at a time, bounding the cosine block's memory."""


class RidgeMoments:
    """Running (weighted) moments of a labelled set, Σw, Σwx, Σwy, XᵀWX and XᵀWy, from which
    ridge is solved: adding rows costs O(rows·d²) and never refits from scratch.

    Sums are float64 whatever X's dtype: in fp16 or fp32 the small eigenvalues that alpha is
    there to tame would drown in rounding."""

    def __init__(self, dim: int) -> None:
        self.total = 0.0
        self.sum_x = np.zeros(dim)
        self.sum_y = 0.0
        self.xtx = np.zeros((dim, dim))
        self.xty = np.zeros(dim)

    def add(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> RidgeMoments:
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
        # sqrt(w) on both sides keeps the product symmetric, so BLAS can use syrk.
        scaled = X * np.sqrt(w)[:, None]
        self.total += float(w.sum())
        self.sum_x += w @ X
        self.sum_y += float(w @ y)
        self.xtx += scaled.T @ scaled
        self.xty += X.T @ (w * y)
        return self

    def minus(self, other: RidgeMoments) -> RidgeMoments:
        """The moments of the rows in `self` but not in `other` (a subset of them)."""
        rest = RidgeMoments(len(self.sum_x))
        rest.total = self.total - other.total
        rest.sum_x = self.sum_x - other.sum_x
        rest.sum_y = self.sum_y - other.sum_y
        rest.xtx = self.xtx - other.xtx
        rest.xty = self.xty - other.xty
        return rest

    def solve(self, alpha: float) -> tuple[np.ndarray, float]:
        """Weights and bias: (XcᵀWXc + αI) w = XcᵀW(y - ȳ) on data centred at the weighted
        means, so the bias is not penalised."""
        mean_x = self.sum_x / self.total
        mean_y = self.sum_y / self.total
        gram = self.xtx - self.total * np.outer(mean_x, mean_x)
        gram[np.diag_indices_from(gram)] += alpha
        w = np.linalg.solve(gram, self.xty - self.total * mean_x * mean_y)
        return w, mean_y - float(mean_x @ w)


def disagreement(
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    X_candidates: np.ndarray,
    models: int = 8,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
) -> np.ndarray:
    """Per candidate, the std of `models` ridge heads' predictions, each head fitted on a
    bootstrap resample of the labelled set.

    High where the labels do not pin the head down: a style with few labels, or a direction
    the labelled set barely spans. (A direction with no labels at all is shrunk to the mean by
    every member alike, so it is not flagged: that is what the strata in `select_uncertain`
    are for.)
    """
    if models < 2:
        raise ValueError(f"disagreement needs at least 2 models, got {models}")
    X = np.asarray(X_labeled)
    y = np.asarray(y_labeled, np.float64)
    n = len(y)
    if n < 2:
        raise ValueError("disagreement needs at least 2 labelled rows")
    rng = np.random.default_rng(seed)
    weights = np.empty((X.shape[1], models))
    biases = np.empty(models)
    for m in range(models):
        # A bootstrap resample as counts: fitting only the rows drawn (~63%) with their counts
        # as weights is the same fit for less work than the n-row resample.
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        drawn = np.flatnonzero(counts)
        moments = RidgeMoments(X.shape[1]).add(X[drawn], y[drawn], counts[drawn])
        weights[:, m], biases[m] = moments.solve(alpha)
    # Members differ by far more than float32 rounding, so the big product can stay float32.
    preds = np.asarray(X_candidates, np.float32) @ weights.astype(np.float32)
    preds = preds.astype(np.float64) + biases
    return preds.std(axis=1, ddof=1)


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.float32(1e-12))


def _max_cosine_to(V: np.ndarray, others: np.ndarray | None) -> np.ndarray:
    """Largest cosine of each row of V (unit) to any row of `others` (unit), -inf if none."""
    best = np.full(len(V), -np.inf, np.float32)
    if others is None or len(others) == 0 or len(V) == 0:
        return best
    for start in range(0, len(others), EXCLUDE_BLOCK):
        block = V @ others[start : start + EXCLUDE_BLOCK].T
        np.maximum(best, block.max(axis=1), out=best)
    return best


def select_uncertain(
    scores: np.ndarray,
    strata: np.ndarray,
    X: np.ndarray,
    k: int,
    max_cosine: float = 0.95,
    exclude_like: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of up to `k` candidates, the highest `scores` first, spread over `strata`.

    Strata take turns (round-robin, ordered by their best score), each giving its best
    remaining candidate; a candidate whose cosine to one already chosen, or to any row of
    `exclude_like` (say the labelled embeddings), exceeds `max_cosine` is skipped for good, and
    its stratum moves on to the next. Fewer than `k` come back only when the candidates run out.

    Memory stays O(k·d + LOOKAHEAD·(k + len(exclude_like))): the next few candidates of each
    stratum are checked as one block against what is chosen so far, never all against all.
    """
    scores = np.asarray(scores, np.float64)
    strata = np.asarray(strata)
    n = len(scores)
    if len(strata) != n or len(X) != n:
        raise ValueError("scores, strata and X must have one row per candidate")
    k = min(int(k), n)
    if k <= 0:
        return np.empty(0, np.int64)

    _, stratum = np.unique(strata, return_inverse=True)
    stratum = stratum.ravel()
    # Per stratum, candidates by descending score (index breaks ties, so runs repeat).
    order = np.lexsort((np.arange(n), -scores, stratum))
    starts = np.flatnonzero(np.r_[True, np.diff(stratum[order]) != 0])
    queues = np.split(order, starts[1:])
    queues.sort(key=lambda queue: -scores[queue[0]])  # stable: equal bests keep stratum order
    pointers = [0] * len(queues)

    excluded = None if exclude_like is None or len(exclude_like) == 0 else _unit(exclude_like)
    chosen_vectors = np.empty((k, X.shape[1]), np.float32)
    chosen: list[int] = []
    while len(chosen) < k:
        live = [s for s, queue in enumerate(queues) if pointers[s] < len(queue)]
        if not live:
            break
        ahead = max(1, LOOKAHEAD // len(live))
        segments = [queues[s][pointers[s] : pointers[s] + ahead] for s in live]
        batch = np.concatenate(segments)
        V = _unit(X[batch])
        clash = np.maximum(
            _max_cosine_to(V, chosen_vectors[: len(chosen)]), _max_cosine_to(V, excluded)
        )
        round_start = len(chosen)
        offset = 0
        for s, segment in zip(live, segments, strict=True):
            taken = None
            for j in range(len(segment)):
                if clash[offset + j] > max_cosine:
                    continue
                this_round = chosen_vectors[round_start : len(chosen)]
                if len(this_round) and float((this_round @ V[offset + j]).max()) > max_cosine:
                    continue
                taken = j
                break
            if taken is None:
                # All of this look-ahead are duplicates (which stay duplicates: the chosen set
                # only grows); the stratum resumes after them next round.
                pointers[s] += len(segment)
            else:
                chosen_vectors[len(chosen)] = V[offset + taken]
                chosen.append(int(segment[taken]))
                pointers[s] += taken + 1
                if len(chosen) == k:
                    break
            offset += len(segment)
    return np.asarray(chosen, np.int64)


def uncertainty_round(
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    X_candidates: np.ndarray,
    strata: np.ndarray,
    k: int,
    models: int = 8,
    max_cosine: float = 0.95,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[np.ndarray, np.ndarray]:
    """One round of active learning: indices into `X_candidates` of the next `k` to label, and
    their disagreement scores. Near-duplicates of the labelled rows are never chosen."""
    scores = disagreement(X_labeled, y_labeled, X_candidates, models=models, seed=seed, alpha=alpha)
    picked = select_uncertain(
        scores, strata, X_candidates, k, max_cosine=max_cosine, exclude_like=X_labeled
    )
    return picked, scores[picked]
