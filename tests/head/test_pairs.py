"""Training from human pairs: the Davidson loss, pair folds, held-out pair accuracy, and heads
that recover a planted order from pairs alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from assets.head.models import MLPConfig
from assets.head.pairfit import Judged
from assets.head.pairs import (
    LOST,
    TIE,
    WON,
    Pairs,
    accuracy,
    davidson_nll,
    extend_folds,
    fold_split,
    pair_folds,
)
from assets.head.planted import planted
from assets.head.train import TrainingData, TrainSettings, cross_validate, fit_final, fit_head

FAST = MLPConfig(hidden=(64,), max_epochs=40, patience=5, batch_size=256, lr=3e-3)


def test_davidson_loss_matches_a_hand_computation():
    # d = 2 ln 2: e^{d/2} = 2, e^{-d/2} = 1/2; ν = 1: Z = 3.5.
    gap = torch.full((3,), 2 * math.log(2), dtype=torch.float64)
    outcome = torch.tensor([WON, LOST, TIE], dtype=torch.float64)
    expected = -(math.log(2 / 3.5) + math.log(0.5 / 3.5) + math.log(1 / 3.5)) / 3
    assert float(davidson_nll(gap, outcome, 0.0)) == pytest.approx(expected, rel=1e-12)
    # ν = 0.5, one pair lost at d = 0: P = 1 / (1 + 1 + 0.5)
    one = davidson_nll(torch.zeros(1, dtype=torch.float64), torch.tensor([LOST]), math.log(0.5))
    assert float(one) == pytest.approx(math.log(2.5), rel=1e-12)
    # ν -> 0 is Bradley-Terry: -log σ(d)
    bt = davidson_nll(gap[:1], outcome[:1], -60.0)
    assert float(bt) == pytest.approx(math.log1p(math.exp(-2 * math.log(2))), rel=1e-9)


def test_pair_accuracy_counts_score_ties_half_and_leaves_judged_ties_out():
    scores = np.array([0.9, 0.1, 0.5, 0.5])
    first, second = np.array([0, 1, 2, 0]), np.array([1, 0, 3, 3])
    outcome = np.array([WON, WON, LOST, TIE])
    # right, wrong, a tie in scores (0.5); the judged tie is left out
    assert accuracy(scores, first, second, outcome) == {
        "pair_accuracy": pytest.approx(1.5 / 3),
        "pairs": 3,
        "ties_left_out": 1,
    }
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 50, 200), rng.integers(50, 100, 200)
    outcome = rng.choice([WON, LOST, TIE], 200)
    constant = accuracy(np.full(100, 0.4), first, second, outcome)
    assert constant["pair_accuracy"] == 0.5
    assert constant["pairs"] + constant["ties_left_out"] == 200


def test_pairs_are_held_out_with_both_posts_and_dropped_across_folds():
    rated = np.array([0, 1, 2, 0, 1, 2])
    folds = extend_folds(rated, 4, k=3, seed=0)
    np.testing.assert_array_equal(folds[:6], rated)  # rated posts keep their folds
    assert np.bincount(folds, minlength=3).max() - np.bincount(folds, minlength=3).min() <= 1
    folds = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    first, second = np.array([0, 0, 1, 6, 2]), np.array([3, 1, 7, 3, 4])
    np.testing.assert_array_equal(pair_folds(folds, first, second), [0, -1, 1, 0, -1])
    train, test, dropped = fold_split(folds, first, second, 0)
    np.testing.assert_array_equal(test, [0, 3])  # both posts in fold 0
    np.testing.assert_array_equal(train, [2, 4])  # neither post in fold 0
    assert dropped == 1  # pair 1 straddles folds 0 and 1
    train, test, dropped = fold_split(folds, first, second, 2)
    np.testing.assert_array_equal(test, [])
    assert dropped == 1 and len(train) == 4


def simulate_pairs(quality: np.ndarray, items: np.ndarray, n: int, seed: int) -> Judged:
    """Judgments of a planted quality: noisy gaps (N(0, 0.5)), a tie when the noisy gap is
    under 0.2 (about a tenth of the pairs)."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(items, n), rng.choice(items, n)
    a, b = a[a != b], b[a != b]
    gap = quality[a] - quality[b] + rng.normal(0, 0.5, len(a))
    outcome = np.where(np.abs(gap) < 0.2, TIE, np.where(gap > 0, WON, LOST))
    return Judged(a, b, outcome)


@pytest.fixture(scope="module")
def world():
    return planted(n=2500, dim=48, clusters=8, test=500, seed=3)


@pytest.mark.parametrize("head_type", ["mlp", "ridge"])
def test_a_head_on_pairs_alone_recovers_the_planted_order(world, head_type):
    pairs = simulate_pairs(world.quality, world.pool_index, 3000, seed=0)
    assert 0.05 < np.mean(pairs.outcome == TIE) < 0.2
    settings = TrainSettings(head_type, FAST)
    test = world.test_index
    trained = fit_head(world.X, pairs=pairs, settings=settings)
    rho = spearmanr(trained.predict(world.X[test]), world.quality[test])[0]
    shuffled = Judged(
        pairs.first, pairs.second, np.random.default_rng(1).permutation(pairs.outcome)
    )
    random = fit_head(world.X, pairs=shuffled, settings=settings)
    rho_random = spearmanr(random.predict(world.X[test]), world.quality[test])[0]
    print(f"{head_type}: Spearman {rho:.3f} on pairs, {rho_random:.3f} on shuffled outcomes")
    assert rho > 0.8 and rho > rho_random + 0.5


def _with_pairs(world, rated: int, train_on_pairs: int, seed: int = 0) -> TrainingData:
    """The first `rated` pool items rated; pairs over the whole pool (the rest seen only in
    pairs)."""
    pool = world.pool_index
    rng = np.random.default_rng(seed)
    order = np.concatenate([pool[:rated], pool[rated:]])
    position = np.empty(len(world.X), np.int64)
    position[order] = np.arange(len(order))
    judged = simulate_pairs(world.quality, pool, train_on_pairs, seed)
    extra = order[rated:]
    pairs = Pairs(
        first=position[judged.first],
        second=position[judged.second],
        outcome=judged.outcome,
        labelers=rng.choice(["ann", "bob"], len(judged)),
        X=world.X[extra],
        post_keys=np.array([f"danbooru:{i}" for i in extra]),
        sites=np.full(len(extra), "danbooru"),
    )
    rated_items = order[:rated]
    return TrainingData(
        X=world.X[rated_items],
        labels=world.labels[rated_items].astype(np.float64),
        sites=rng.choice(["danbooru", "e621"], rated),
        ratings=rng.choice(["g", "s"], rated),
        post_keys=np.array([f"danbooru:{i}" for i in rated_items]),
        pairs=pairs,
    )


def test_cross_validation_on_pairs_scores_every_model_on_held_out_pairs(world):
    data = _with_pairs(world, rated=300, train_on_pairs=3000)
    settings = TrainSettings("mlp", FAST, folds=3, train_on="pairs")
    cv = cross_validate(data, settings)
    scores = cv.metrics(data)
    report = cv.pairs_report(data)
    for fold in report["folds"]:
        assert fold["train"] + fold["held_out"] + fold["dropped"] <= len(data.pairs)
    assert report["held_out"] + report["across_folds"] == len(data.pairs)
    assert report["held_out"] == sum(f["held_out"] for f in report["folds"])
    assert report["labelers"].keys() == {"ann", "bob"}
    head, ridge = scores["head"]["pairs"], scores["ridge"]["pairs"]
    assert scores["constant"]["pairs"]["pair_accuracy"] == 0.5
    figures = f"head {head['pair_accuracy']:.3f}, ridge {ridge['pair_accuracy']:.3f}"
    print(f"held-out pair accuracy: {figures}")
    assert head["pair_accuracy"] > 0.75 and ridge["pair_accuracy"] > 0.75
    assert head["ties_left_out"] > 0 and head["pairs"] + head["ties_left_out"] == report["held_out"]
    # the ratings it never trained on are ranked too
    assert scores["head"]["overall"]["spearman"] > 0.5
    net = fit_final(data, settings, cv)
    assert net.arch.shift != 0.0  # centred: pairs do not place the scale


def test_ratings_mode_is_unchanged_by_pairs(world):
    data = _with_pairs(world, rated=600, train_on_pairs=1000)
    plain = TrainingData(data.X, data.labels, data.sites, data.ratings, data.post_keys)
    settings = TrainSettings("mlp", FAST, folds=3)
    with_pairs, without = cross_validate(data, settings), cross_validate(plain, settings)
    for name in ("constant", "ridge", "head"):
        np.testing.assert_array_equal(with_pairs.predictions[name], without.predictions[name])
    np.testing.assert_array_equal(with_pairs.folds, without.folds)
    a, b = fit_final(data, settings, with_pairs), fit_final(plain, settings, without)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert "pairs" in with_pairs.metrics(data)["head"]
    assert "pairs" not in without.metrics(plain)["head"]
    assert "train_on" not in settings.hyperparameters()


def test_both_mode_trains_and_pairs_mode_needs_pairs(world):
    data = _with_pairs(world, rated=400, train_on_pairs=1500)
    cv = cross_validate(data, TrainSettings("mlp", FAST, folds=3, train_on="both"))
    assert cv.metrics(data)["head"]["pairs"]["pair_accuracy"] > 0.75
    plain = TrainingData(data.X, data.labels, data.sites, data.ratings, data.post_keys)
    with pytest.raises(ValueError, match="needs pairs"):
        cross_validate(plain, TrainSettings("ridge", train_on="pairs"))


def test_the_gate_refuses_a_head_below_ridge_on_held_out_pairs():
    from assets.head.gate import decide

    def cv(head: float, ridge: float, pairs: int = 10_000) -> dict:
        found = {"pairs": pairs}
        return {
            "head": {"overall": {"spearman": 0.6}, "pairs": {"pair_accuracy": head, **found}},
            "ridge": {"overall": {"spearman": 0.6}, "pairs": {"pair_accuracy": ridge, **found}},
        }

    refused = decide(cv(0.70, 0.75), min_spearman=0.3, ridge_margin=0.02)
    assert not refused.passed and "pair accuracy 0.700 is below ridge's 0.750" in refused.reason
    assert decide(cv(0.74, 0.75), min_spearman=0.3, ridge_margin=0.02).passed
    assert decide(cv(float("nan"), 0.75), min_spearman=0.3, ridge_margin=0.02).passed
    # On 100 held-out pairs a gap of 0.05 is noise (1/sqrt(100) = 0.1): the head passes.
    assert decide(cv(0.70, 0.75, pairs=100), min_spearman=0.3, ridge_margin=0.02).passed
    assert not decide(cv(0.60, 0.75, pairs=100), min_spearman=0.3, ridge_margin=0.02).passed


class Fixed:
    """An imported head's stand-in: each embedding row's score looked up."""

    def __init__(self, scores_by_row: dict[bytes, float]):
        self.scores = scores_by_row

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.scores[row.tobytes()] for row in np.asarray(X, np.float32)])


def test_an_imported_head_is_scored_on_the_same_held_out_pairs(world):
    data = _with_pairs(world, rated=200, train_on_pairs=800)
    # _with_pairs's items are the pool's rows in order: the rated ones, then the rest
    X = np.concatenate([data.X, data.pairs.X]).astype(np.float32)
    quality = {row.tobytes(): q for row, q in zip(X, world.quality[world.pool_index], strict=True)}
    cv = cross_validate(
        data, TrainSettings("ridge", folds=3, train_on="pairs"), {"laion": Fixed(quality)}
    )
    report = cv.pairs_report(data)
    laion = report["accuracy"]["laion"]
    assert laion["pairs"] == report["accuracy"]["head"]["pairs"] > 0
    assert laion["pair_accuracy"] > 0.8  # the truth, up to the judgments' noise
    assert cv.metrics(data)["laion"]["pairs"] == laion


def test_pairs_over_rated_items_only(world):
    rated = world.pool_index[:800]
    judged = simulate_pairs(world.quality[rated], np.arange(800), 2000, seed=4)
    rng = np.random.default_rng(2)
    data = TrainingData(
        X=world.X[rated],
        labels=world.labels[rated].astype(np.float64),
        sites=rng.choice(["danbooru", "e621"], 800),
        ratings=rng.choice(["g", "s"], 800),
        post_keys=np.array([f"danbooru:{i}" for i in rated]),
        pairs=Pairs.over(judged.first, judged.second, judged.outcome),
    )
    cv = cross_validate(data, TrainSettings("ridge", folds=4, train_on="pairs"))
    scores = cv.metrics(data)
    assert scores["head"]["pairs"]["pair_accuracy"] > 0.8
    assert scores["head"]["overall"]["spearman"] > 0.6
    assert cv.pairs_report(data)["pair_only_items"] == 0
