"""Training recovers a planted signal, beats the constant predictor, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from assets.head.gate import decide
from assets.head.models import MLPConfig, fit_mlp, fit_ridge, to_target
from assets.head.planted import planted
from assets.head.train import TrainingData, TrainSettings, cross_validate, fit_final

FAST = MLPConfig(hidden=(64,), max_epochs=60, patience=6, batch_size=256, lr=3e-3)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    p = planted(n=2500, dim=48, clusters=8, test=500, seed=3)
    rng = np.random.default_rng(0)
    return TrainingData(
        X=p.X,
        labels=p.labels.astype(np.float64),
        sites=rng.choice(["danbooru", "e621"], len(p.labels)),
        ratings=rng.choice(["g", "s", "q", "e"], len(p.labels)),
        post_keys=np.array([f"danbooru:{i}" for i in range(len(p.labels))]),
    )


@pytest.mark.parametrize("head_type", ["mlp", "ridge"])
def test_cross_validation_recovers_the_planted_signal(data, head_type):
    cv = cross_validate(data, TrainSettings(head_type, FAST, folds=5, seed=0))
    scores = cv.metrics(data)
    head, constant = scores["head"]["overall"], scores["constant"]["overall"]
    assert head["spearman"] > 0.6 and head["pairwise_accuracy"] > 0.7
    assert head["mse"] < 0.7 * constant["mse"] and head["qwk"] > 0.4
    assert set(scores["head"]["by_site"]) == {"danbooru", "e621"}
    assert set(scores["head"]["by_rating"]) == {"e", "g", "q", "s"}
    assert [r["label"] for r in cv.calibration(data)] == [1, 2, 3, 4, 5]
    assert decide(scores, min_spearman=0.3, ridge_margin=0.05).passed


def test_training_is_reproducible(data):
    settings = TrainSettings("mlp", FAST, folds=3, seed=1)
    first = cross_validate(data, settings)
    again = cross_validate(data, settings)
    assert np.array_equal(first.predictions["head"], again.predictions["head"])
    net_a, net_b = fit_final(data, settings, first), fit_final(data, settings, again)
    for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def test_shuffled_labels_fail_the_gate(data):
    rng = np.random.default_rng(5)
    shuffled = TrainingData(
        data.X, rng.permutation(data.labels), data.sites, data.ratings, data.post_keys
    )
    scores = cross_validate(shuffled, TrainSettings("ridge", folds=3)).metrics(shuffled)
    decision = decide(scores, min_spearman=0.3, ridge_margin=0.02)
    assert not decision.passed and "below the minimum 0.300" in decision.reason


def test_the_gate_refuses_a_head_worse_than_ridge():
    scores = {"head": {"overall": {"spearman": 0.50}}, "ridge": {"overall": {"spearman": 0.60}}}
    decision = decide(scores, min_spearman=0.3, ridge_margin=0.05)
    assert not decision.passed and "worse than ridge" in decision.reason
    assert decide(scores, min_spearman=0.3, ridge_margin=0.1).passed
    nan = {"head": {"overall": {"spearman": float("nan")}}, "ridge": scores["ridge"]}
    assert not decide(nan, min_spearman=-1.0, ridge_margin=2.0).passed


def test_ridge_leave_one_out_matches_refitting():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = X @ rng.normal(size=5) + rng.normal(0, 0.3, 40)
    fit = fit_ridge(X, y, alphas=(0.7,))
    errors = []
    for i in range(40):
        keep = np.arange(40) != i
        one = fit_ridge(X[keep], y[keep], alphas=(0.7,))
        errors.append((X[i] @ one.weight + one.bias - y[i]) ** 2)
    assert fit.loo_mse == pytest.approx(np.mean(errors), rel=1e-6)


def test_bradley_terry_term_trains_and_ranks(data):
    y = to_target(data.labels)
    config = MLPConfig(hidden=(32,), max_epochs=30, patience=5, pairwise_weight=0.5)
    fit = fit_mlp(data.X[:1500], y[:1500], config, seed=0)
    from scipy.stats import spearmanr

    assert spearmanr(fit.predict(data.X[1500:]), y[1500:])[0] > 0.5
