from __future__ import annotations

import json

import numpy as np
import pytest

import scoretag.benchmarks.head as head_benchmark
from assets.head.active import (
    RidgeMoments,
    disagreement,
    select_uncertain,
    uncertainty_round,
)
from assets.head.planted import planted
from scoretag.benchmarks.head import head_bench, sampling_curves


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_ridge_matches_the_normal_equations() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    y = X @ rng.normal(size=10) + 2.0 + rng.normal(size=200)
    Xc = X - X.mean(axis=0)
    w = np.linalg.solve(Xc.T @ Xc + 0.7 * np.eye(10), Xc.T @ (y - y.mean()))
    expected = (X[:5] - X.mean(axis=0)) @ w + y.mean()
    w_fit, b_fit = RidgeMoments(10).add(X, y).solve(0.7)
    np.testing.assert_allclose(X[:5] @ w_fit + b_fit, expected, rtol=1e-10)


def test_ridge_accepts_fp16_embeddings() -> None:
    rng = np.random.default_rng(1)
    X = _unit(rng.normal(size=(300, 32))).astype(np.float16)
    y = rng.uniform(size=300)
    w, b = RidgeMoments(32).add(X, y).solve(1.0)
    preds = np.asarray(X, np.float64) @ w + b
    assert preds.dtype == np.float64 and np.isfinite(preds).all()


def test_disagreement_is_higher_far_from_the_labels() -> None:
    rng = np.random.default_rng(2)
    d = 16
    X = rng.normal(size=(200, d))
    y = X @ rng.normal(size=d) + rng.normal(size=200)
    near = rng.normal(size=(100, d)) * 0.5
    far = _unit(rng.normal(size=(100, d))) * 8.0
    scores = disagreement(X, y, np.vstack([near, far]), models=8, seed=0)
    assert scores.shape == (200,) and (scores >= 0).all()
    assert np.median(scores[100:]) > 2 * np.median(scores[:100])


def test_disagreement_flags_a_style_with_few_labels() -> None:
    # Unit embeddings in two styles: 400 labels of style a, 8 of style b.
    rng = np.random.default_rng(3)
    d = 64
    centres = _unit(rng.normal(size=(2, d)))

    def style(c: int, count: int) -> np.ndarray:
        return _unit(centres[c] + rng.normal(size=(count, d)) * 0.7 / np.sqrt(d))

    X = np.vstack([style(0, 400), style(1, 8)])
    y = np.r_[np.full(400, 0.3), np.full(8, 0.8)] + rng.normal(0, 0.1, 408)
    scores = disagreement(X, y, np.vstack([style(0, 50), style(1, 50)]), seed=1)
    assert np.median(scores[50:]) > 1.5 * np.median(scores[:50])


def test_disagreement_is_seeded() -> None:
    rng = np.random.default_rng(4)
    X, y, C = rng.normal(size=(50, 8)), rng.normal(size=50), rng.normal(size=(20, 8))
    np.testing.assert_array_equal(disagreement(X, y, C, seed=5), disagreement(X, y, C, seed=5))
    with pytest.raises(ValueError):
        disagreement(X, y, C, models=1)


def test_select_spreads_over_strata() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 32))
    strata = rng.integers(0, 5, 500)
    scores = rng.uniform(size=500) + (strata == 0) * 10  # stratum 0 holds every top score
    picked = select_uncertain(scores, strata, X, k=10)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert set(strata[picked].tolist()) == {0, 1, 2, 3, 4}
    assert np.bincount(strata[picked], minlength=5).tolist() == [2, 2, 2, 2, 2]
    # Within each stratum, the best scores go first.
    for s in range(5):
        members = np.flatnonzero(strata == s)
        best = members[np.argsort(-scores[members])[:2]]
        assert set(best.tolist()) == set(picked[strata[picked] == s].tolist())


def test_select_without_strata_is_by_score() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    X = np.eye(5)
    np.testing.assert_array_equal(select_uncertain(scores, np.zeros(5), X, k=3), [1, 3, 2])


def test_select_skips_near_duplicates() -> None:
    rng = np.random.default_rng(6)
    base = _unit(rng.normal(size=(40, 64)))
    # Every base row three times with a little jitter: cosines of ~0.99 between copies.
    X = _unit(np.repeat(base, 3, axis=0) + rng.normal(size=(120, 64)) * 0.01)
    scores = rng.uniform(size=120)
    strata = np.arange(120) % 4
    picked = select_uncertain(scores, strata, X, k=30, max_cosine=0.95)
    assert len(picked) == 30
    cosine = _unit(X[picked]) @ _unit(X[picked]).T
    assert cosine[~np.eye(30, dtype=bool)].max() <= 0.95
    # Asking for more than there are distinct rows returns each group at most once.
    everything = select_uncertain(scores, strata, X, k=120, max_cosine=0.95)
    assert len(everything) == 40
    assert len(set((everything // 3).tolist())) == 40


def test_select_excludes_neighbours_of_the_labelled() -> None:
    rng = np.random.default_rng(7)
    X = _unit(rng.normal(size=(100, 32)))
    labelled = _unit(X[:20] + rng.normal(size=(20, 32)) * 0.01)
    scores = np.r_[np.full(20, 10.0), rng.uniform(size=80)]  # the neighbours score highest
    picked = select_uncertain(scores, np.zeros(100), X, k=30, exclude_like=labelled)
    assert len(picked) == 30
    assert picked.min() >= 20
    assert (_unit(X[picked]) @ labelled.T).max() <= 0.95


def test_select_returns_all_when_k_is_large_and_nothing_when_zero() -> None:
    rng = np.random.default_rng(8)
    X = _unit(rng.normal(size=(12, 32)))
    scores, strata = rng.uniform(size=12), rng.integers(0, 3, 12)
    assert sorted(select_uncertain(scores, strata, X, k=50).tolist()) == list(range(12))
    assert select_uncertain(scores, strata, X, k=0).size == 0


def test_select_many_candidates_batches_correctly() -> None:
    # More candidates than one look-ahead, many strata, fp16 input.
    rng = np.random.default_rng(9)
    X = _unit(rng.normal(size=(5_000, 64))).astype(np.float16)
    scores, strata = rng.uniform(size=5_000), rng.integers(0, 37, 5_000)
    picked = select_uncertain(scores, strata, X, k=1_000)
    assert len(picked) == len(np.unique(picked)) == 1_000
    counts = np.bincount(strata[picked], minlength=37)
    assert counts.max() - counts.min() <= 1


def test_uncertainty_round() -> None:
    rng = np.random.default_rng(10)
    X = _unit(rng.normal(size=(300, 32)))
    y = rng.uniform(size=300)
    candidates = _unit(rng.normal(size=(400, 32)))
    strata = rng.integers(0, 4, 400)
    picked, scores = uncertainty_round(X, y, candidates, strata, k=20, seed=1)
    assert len(picked) == 20 and len(np.unique(picked)) == 20
    np.testing.assert_allclose(scores, disagreement(X, y, candidates, seed=1)[picked])
    assert set(strata[picked].tolist()) == {0, 1, 2, 3}


def test_small_bench() -> None:
    result = head_bench(n=4_000, dim=64, test=1_000, step=100, budget=1_000)
    for key in (
        "bench",
        "n",
        "dim",
        "test",
        "step",
        "curves",
        "target_spearman",
        "labels_to_target_random",
        "labels_to_target_stratified",
        "labels_to_target_active",
        "active_over_random",
        "seconds",
    ):
        assert key in result
    assert result["bench"] == "head"
    assert set(result["curves"]) == {"random", "stratified", "active"}
    for curve in result["curves"].values():
        assert [labels for labels, _ in curve] == list(range(100, 1_001, 100))
        assert all(-1 <= rho <= 1 for _, rho in curve)
        assert curve[-1][1] > curve[0][1]  # more labels, a better head
    # The uncertainty sampler reaches the target within the budget. That it needs fewer labels
    # than random is not claimed: on this planted data it does not (README: 1.1 at full size;
    # 0.64 to 1.6 over seeds 0-5 at 20,000 x 128), so no seed is picked to make it look so.
    assert result["active_over_random"] > 0
    json.dumps(result)


def _curves(monkeypatch: pytest.MonkeyPatch, sampler, seed: int) -> dict:
    """The bench's sampling curves on small planted data, `sampler` standing in for active."""
    monkeypatch.setattr(head_benchmark, "_active_sampler", sampler)
    data = planted(n=4_000, dim=64, test=1_000, seed=seed)
    return sampling_curves(data, step=100, budget=1_000, seed=seed)


def test_active_over_random_is_none_for_a_sampler_that_stops_learning(monkeypatch) -> None:
    # Labels its first batch again and again: its head never gets past 100 labels' worth.
    def repeat(data, first, alpha, seed):
        return lambda labelled, size: first[:size]

    result = _curves(monkeypatch, repeat, seed=0)
    assert result["labels_to_target_random"] is not None
    assert result["labels_to_target_active"] is None and result["active_over_random"] is None


def test_active_over_random_is_above_one_for_a_sampler_that_wastes_labels(monkeypatch) -> None:
    # Labels every image twice: about twice the labels for the same head. Over the first four
    # seeds (one alone can tie: labels are counted in steps of 100), it measures well above 1.
    def twice(data, first, alpha, seed):
        order = np.random.default_rng(0).permutation(data.pool_index)
        return lambda labelled, size: np.repeat(order[len(labelled) // 2 :][: size // 2], 2)

    ratios = [_curves(monkeypatch, twice, seed)["active_over_random"] for seed in range(4)]
    assert np.mean(ratios) > 1.5, ratios
