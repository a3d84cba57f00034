from __future__ import annotations

import numpy as np
import pytest

from assets.head.folds import fold_pairs, stratified_folds
from assets.head.metrics import to_category


def sample(n: int = 1003, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Half-point labels, skewed towards the middle like real ratings, on three sites of
    # unequal size: strata of many different sizes, most not multiples of k.
    labels = np.clip(np.round(rng.normal(3, 1, size=n) * 2) / 2, 1, 5)
    sites = rng.choice(np.array(["danbooru", "e621", "gelbooru"]), size=n, p=[0.6, 0.3, 0.1])
    return labels, sites


@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_each_stratum_split_evenly(k: int) -> None:
    labels, sites = sample()
    folds = stratified_folds(labels, sites, k=k, seed=0)
    categories = to_category(labels)
    strata = 0
    for category in range(1, 6):
        for site in np.unique(sites):
            members = (categories == category) & (sites == site)
            if not members.any():
                continue
            strata += 1
            counts = np.bincount(folds[members], minlength=k)
            assert counts.max() - counts.min() <= 1, (category, site, counts)
    assert strata > k  # the balance test below is not trivial


@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_folds_balanced_overall(k: int) -> None:
    labels, sites = sample()
    folds = stratified_folds(labels, sites, k=k, seed=3)
    assert folds.shape == labels.shape
    assert set(np.unique(folds)) == set(range(k))
    sizes = np.bincount(folds, minlength=k)
    assert sizes.max() - sizes.min() <= 1, sizes


def test_deterministic_for_a_seed() -> None:
    labels, sites = sample()
    first = stratified_folds(labels, sites, k=5, seed=42)
    np.testing.assert_array_equal(first, stratified_folds(labels, sites, k=5, seed=42))
    # Equal inputs as fresh arrays (object dtype sites too) give the same folds.
    np.testing.assert_array_equal(
        first, stratified_folds(labels.tolist(), np.array(sites.tolist(), dtype=object), 5, 42)
    )


def test_different_seed_different_assignment() -> None:
    labels, sites = sample()
    a = stratified_folds(labels, sites, k=5, seed=0)
    b = stratified_folds(labels, sites, k=5, seed=1)
    assert not np.array_equal(a, b)
    # Not just the same folds under other ids: the items grouped together change.

    def partition(folds: np.ndarray) -> set[frozenset[int]]:
        return {frozenset(np.flatnonzero(folds == f).tolist()) for f in range(5)}

    assert partition(a) != partition(b)


def test_k_equal_to_n_puts_one_item_per_fold() -> None:
    folds = stratified_folds(np.array([1, 2, 2, 5]), np.array(["a", "a", "b", "a"]), k=4)
    assert sorted(folds.tolist()) == [0, 1, 2, 3]


def test_errors() -> None:
    labels, sites = sample(n=10)
    with pytest.raises(ValueError, match="at least 2"):
        stratified_folds(labels, sites, k=1)
    with pytest.raises(ValueError, match="need at least 11 items"):
        stratified_folds(labels, sites, k=11)
    with pytest.raises(ValueError, match="differ in length"):
        stratified_folds(labels, sites[:5], k=2)
    with pytest.raises(ValueError, match="finite"):
        stratified_folds(np.r_[labels[:-1], np.nan], sites, k=2)


def test_fold_pairs_partition_the_items() -> None:
    labels, sites = sample(n=101)
    folds = stratified_folds(labels, sites, k=5, seed=0)
    pairs = list(fold_pairs(folds, 5))
    assert len(pairs) == 5
    tests = []
    for fold, (train, test) in enumerate(pairs):
        assert np.all(folds[test] == fold) and np.all(folds[train] != fold)
        assert np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(np.union1d(train, test), np.arange(101))
        tests.append(test)
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(101))
    with pytest.raises(ValueError, match="fold ids"):
        list(fold_pairs(folds, 3))
