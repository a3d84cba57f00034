"""Cross-validation folds for the aesthetic head, stratified by rounded label and site."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from assets.head.metrics import to_category


def stratified_folds(
    labels: np.ndarray, sites: np.ndarray, k: int = 5, seed: int = 0
) -> np.ndarray:
    """A fold id 0..k-1 per item, stratified by (rounded label clipped to 1..5, site).

    Items of each stratum are shuffled with a generator seeded by `seed` and dealt to the
    folds round-robin. The deal carries on from fold to fold across strata instead of
    restarting at fold 0, so every stratum is split as evenly as possible (its per-fold
    counts differ by at most 1) and so are the fold sizes overall. Same inputs and seed,
    same folds.
    """
    y = np.asarray(labels, dtype=float).ravel()
    s = np.asarray(sites).ravel()
    n = y.size
    if s.size != n:
        raise ValueError(f"labels and sites differ in length: {n} vs {s.size}")
    if k < 2:
        raise ValueError(f"k must be at least 2 for cross-validation, got k={k}")
    if k > n:
        raise ValueError(f"k={k} folds need at least {k} items, got {n}")
    if not np.all(np.isfinite(y)):
        raise ValueError("labels must be finite to be stratified (found nan or inf)")

    _, site_index = np.unique(s, return_inverse=True)
    stratum = (to_category(y) - 1) * (int(site_index.max()) + 1) + site_index
    # Strata are dealt in a fixed order (label, then site) and a stable sort keeps input order
    # inside each, so the random draws line up with the same items on every run.
    order = np.argsort(stratum, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(stratum[order]) != 0])
    ends = np.r_[starts[1:], n]

    rng = np.random.default_rng(seed)
    folds = np.empty(n, dtype=np.int64)
    # Which fold gets the first (and so any extra) item is itself drawn from the seed.
    position = int(rng.integers(k))
    for start, end in zip(starts, ends, strict=True):
        members = rng.permutation(order[start:end])
        folds[members] = (position + np.arange(members.size)) % k
        position = (position + members.size) % k
    return folds


def fold_pairs(folds: np.ndarray, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_index, test_index) for each fold 0..k-1: fold f is the test set, the rest train."""
    f = np.asarray(folds).ravel()
    if f.size and (f.min() < 0 or f.max() >= k):
        raise ValueError(f"fold ids must lie in 0..{k - 1}, got {f.min()}..{f.max()}")
    for fold in range(k):
        test = f == fold
        yield np.flatnonzero(~test), np.flatnonzero(test)
