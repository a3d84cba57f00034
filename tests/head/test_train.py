"""Training recovers a planted signal, beats the constant predictor, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assets.head.gate import decide
from assets.head.models import MLPConfig, fit_mlp, fit_ridge, to_target
from assets.head.planted import planted
from assets.head.train import (
    UNTRANSFORMED,
    TrainingData,
    TrainSettings,
    cross_validate,
    fit_final,
)

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


RANKGAUSS = dict(folds=3, seed=0, target_transform="rankgauss")
TINY = MLPConfig(hidden=(16,), max_epochs=12, patience=3, batch_size=128, lr=5e-3)


def _first(data: TrainingData, n: int) -> TrainingData:
    return TrainingData(
        data.X[:n], data.labels[:n], data.sites[:n], data.ratings[:n], data.post_keys[:n]
    )


@pytest.mark.parametrize("head_type", ["mlp", "ridge"])
def test_rankgauss_is_reported_beside_the_same_head_without_it(data, head_type):
    small = _first(data, 600)
    plain = cross_validate(small, TrainSettings(head_type, TINY, folds=3, seed=0))
    both = cross_validate(small, TrainSettings(head_type, TINY, **RANKGAUSS))
    assert set(plain.predictions) == {"constant", "ridge", "head"}  # "none": nothing extra
    assert list(both.predictions) == ["constant", "ridge", "head", UNTRANSFORMED]
    # the untransformed row is exactly the head trained without the transform, same folds
    assert np.array_equal(both.predictions[UNTRANSFORMED], plain.predictions["head"])
    assert np.array_equal(both.predictions["ridge"], plain.predictions["ridge"])
    assert not np.array_equal(both.predictions["head"], plain.predictions["head"])
    assert both.predictions["head"].min() >= 0.0 and both.predictions["head"].max() <= 1.0
    scores = both.metrics(small)
    assert scores["head"]["overall"]["spearman"] > 0.3  # a tiny MLP: the signal, not its size
    assert scores[UNTRANSFORMED]["overall"] == plain.metrics(small)["head"]["overall"]


def test_each_folds_transform_sees_only_its_training_targets(data, monkeypatch):
    import assets.head.train as train

    seen = []
    real = train.fit_transform

    def spy(kind, y):
        seen.append(np.sort(np.asarray(y)))
        return real(kind, y)

    monkeypatch.setattr(train, "fit_transform", spy)
    small = _first(data, 300)
    cv = cross_validate(small, TrainSettings("ridge", **RANKGAUSS))
    y = to_target(small.labels)
    assert len(seen) == 3
    for fold, targets in enumerate(seen):
        assert np.array_equal(targets, np.sort(y[cv.folds != fold]))


@pytest.mark.parametrize("head_type", ["mlp", "ridge"])
def test_a_saved_rankgauss_head_predicts_the_same_after_reload(data, head_type, tmp_path):
    from assets.head.artifact import build_card, load_head, save_head
    from assets.head.train import final_transform

    small = _first(data, 600)
    settings = TrainSettings(head_type, TINY, **RANKGAUSS)
    cv = cross_validate(small, settings)
    net = fit_final(small, settings, cv)
    transform = final_transform(small, settings)
    saved = save_head(net, build_card(net, target_transform=transform.to_dict()), tmp_path / "h")
    loaded = load_head(tmp_path / "h")
    X = data.X[2000:]
    predicted = saved.predict(X)
    assert np.array_equal(loaded.predict(X), predicted)
    with torch.inference_mode():
        raw = net.score(torch.nn.functional.normalize(torch.from_numpy(X), dim=-1)).numpy()
    assert np.allclose(predicted, transform.decode(raw), atol=1e-6)
    assert not np.allclose(predicted, raw, atol=1e-3)  # the knots were applied
    from scipy.stats import spearmanr

    assert spearmanr(predicted, data.labels[2000:])[0] > 0.5


def test_rankgauss_refuses_pairs_and_fit_head_applies_it(data):
    from assets.head.pairfit import Judged
    from assets.head.train import fit_head

    with pytest.raises(ValueError, match='needs train_on = "ratings"'):
        cross_validate(data, TrainSettings("ridge", train_on="both", target_transform="rankgauss"))
    settings = TrainSettings("ridge", target_transform="rankgauss")
    trained = fit_head(data.X[:500], data.labels[:500], settings=settings)
    assert trained.transform.kind == "rankgauss"
    scores = trained.predict(data.X[2000:])
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    pairs = Judged(np.array([0]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="transforms ratings"):
        fit_head(data.X[:500], data.labels[:500], pairs, settings=settings)


def test_rankgauss_with_pairs_beside_scores_both_heads_on_held_out_pairs(data):
    """train_on "ratings" with human pairs in the data: both heads score the pairs too."""
    from dataclasses import replace

    from assets.head.pairs import LOST, WON, Pairs

    small = _first(data, 300)
    rng = np.random.default_rng(3)
    first, second = rng.integers(0, 300, 400), rng.integers(0, 300, 400)
    outcome = np.where(small.labels[first] >= small.labels[second], WON, LOST)
    paired = replace(small, pairs=Pairs.over(first, second, outcome.astype(float)))
    cv = cross_validate(paired, TrainSettings("ridge", **RANKGAUSS))
    plain = cross_validate(paired, TrainSettings("ridge", folds=3, seed=0))
    scores = cv.metrics(paired)
    assert set(cv.item_scores) == {"constant", "ridge", "head", UNTRANSFORMED}
    assert scores[UNTRANSFORMED]["pairs"] == plain.metrics(paired)["head"]["pairs"]
    assert scores["head"]["pairs"]["pair_accuracy"] > 0.7
    assert set(cv.pairs_report(paired)["accuracy"]) == set(cv.item_scores)
