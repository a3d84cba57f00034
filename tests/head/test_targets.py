"""RankGauss as the head's target transform: its properties, its knots on the card, the
setting, and a head trained with it end to end beside the same head without it."""

from __future__ import annotations

import json

import numpy as np
import pydantic
import pytest
from scipy import stats

from assets.head.models import to_target
from assets.head.targets import Identity, RankGauss, fit_transform, from_dict, rankgauss
from orchestration.settings import HeadSettings
from tests.head.test_assets import _home, _materialize


def test_transformed_targets_are_gaussian_whatever_the_labels():
    skewed = np.random.default_rng(0).exponential(size=4000)
    z = rankgauss(skewed).forward(skewed)
    assert abs(stats.skew(skewed)) > 1.5  # far from normal before
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1.0) < 0.01 and abs(stats.skew(z)) < 1e-6
    assert stats.kstest(z, "norm").statistic < 0.002
    assert np.array_equal(np.argsort(z, kind="stable"), np.argsort(skewed, kind="stable"))


def test_ties_share_the_quantile_of_their_average_rank():
    y = np.array([0.0, 0.25, 0.25, 0.25, 1.0])
    t = rankgauss(y)
    z = t.forward(y)
    assert z[1] == z[2] == z[3] == 0.0  # ranks 2, 3, 4 -> 3, the middle of 5
    assert list(t.levels) == [0.0, 0.25, 1.0]
    assert z[0] == pytest.approx(stats.norm.ppf(0.1)) and z[4] == pytest.approx(stats.norm.ppf(0.9))
    # Means of labelers that differ only in float rounding are one value, one knot.
    assert len(rankgauss([10 / 3, 3.3333333333333335, 2.0]).levels) == 2


def test_monotone_and_exact_on_the_knots():
    labels = np.random.default_rng(1).choice([1, 2, 3, 3, 3, 4, 5], 300).astype(float)
    t = rankgauss(to_target(labels))
    assert np.all(np.diff(t.gauss) > 0)
    grid = np.linspace(-0.2, 1.2, 501)
    assert np.all(np.diff(t.forward(grid)) >= 0) and np.all(np.diff(t.decode(grid)) >= 0)
    assert np.array_equal(t.inverse(t.forward(t.levels)), t.levels)
    assert np.allclose(t.decode(t.encode(t.levels)), t.levels, rtol=0, atol=1e-12)
    encoded = t.encode(to_target(labels))
    assert encoded.min() == 0.0 and encoded.max() == 1.0  # what the head learns: [0, 1]


def test_out_of_range_predictions_are_clamped_to_the_training_labels():
    t = rankgauss(to_target(np.array([2, 3, 3, 4, 4, 4])))
    assert t.inverse([-50.0, 50.0]).tolist() == [0.25, 0.75]
    assert t.decode([-0.5, 0.0, 1.0, 1.5]).tolist() == [0.25, 0.25, 0.75, 0.75]
    single = rankgauss([0.5, 0.5])  # one level: every prediction is that level
    assert (
        single.encode([0.5]).tolist() == [0.0] and single.decode([0.0, 0.9]).tolist() == [0.5] * 2
    )


def test_knots_round_trip_through_the_card_exactly():
    t = rankgauss(np.random.default_rng(2).uniform(size=200))
    again = from_dict(json.loads(json.dumps(t.to_dict())))
    assert isinstance(again, RankGauss)
    assert np.array_equal(again.levels, t.levels) and np.array_equal(again.gauss, t.gauss)
    assert isinstance(from_dict(None), Identity)
    plain = fit_transform("none", [0.1, 0.2])
    s = np.array([0.3, 0.4])
    assert plain.encode(s) is s and plain.decode(s) is s and plain.to_dict() is None
    with pytest.raises(ValueError, match="target_transform 'boxcox'"):
        fit_transform("boxcox", s)
    with pytest.raises(ValueError, match="strictly increasing"):
        RankGauss(levels=np.array([0.0, 0.0]), gauss=np.array([-1.0, 1.0]))


def test_the_setting_needs_ratings():
    assert HeadSettings().target_transform == "none"
    assert HeadSettings(target_transform="rankgauss").target_transform == "rankgauss"
    for train_on in ("pairs", "both"):
        with pytest.raises(pydantic.ValidationError, match='needs train_on = "ratings"'):
            HeadSettings(target_transform="rankgauss", train_on=train_on)
    with pytest.raises(pydantic.ValidationError):
        HeadSettings(target_transform="quantile")


def test_rankgauss_end_to_end_reports_both_heads(tmp_path):
    """Selected in the profile's TOML, the asset trains the RankGauss head, reports it beside
    the same head without it, keeps the knots on the card and scores on the label scale."""
    from assets.head.paths import registry
    from assets.head.planted import planted

    p = planted(n=400, dim=64, clusters=5, test=50, seed=4)
    config = tmp_path / "rankgauss.toml"
    config.write_text(
        "[head]\nhead_type = 'ridge'\ntarget_transform = 'rankgauss'\nfolds = 3\n"
        "min_spearman = 0.3\nridge_margin = 0.05\n"
    )
    layout = _home(tmp_path, p.labels, p.X)
    result = _materialize(layout, config)
    assert result.success
    (mat,) = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["target_transform"] == "rankgauss" and meta["gate_passed"]
    assert "| head (no transform) |" in meta["metrics"] and "| head |" in meta["metrics"]
    head = registry(layout).load(meta["version"])
    cv = head.card["metrics"]["cv"]
    assert set(cv) == {"constant", "ridge", "head", "head (no transform)"}
    assert cv["head"]["overall"]["spearman"] == meta["cv_spearman"] > 0.5
    assert head.card["hyperparameters"]["target_transform"] == "rankgauss"
    knots = head.card["target_transform"]
    assert knots["kind"] == "rankgauss" and knots["levels"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    scores = head.predict(p.X)
    assert scores.dtype == np.float32 and scores.min() >= 0.0 and scores.max() <= 1.0
