"""The labels bench on a small planted set: the panel's judgments are what they claim, each
kind of judgment learns, and the answer follows from the curves."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from click.testing import CliRunner

from assets.head.pairs import LOST, TIE, WON
from assets.head.planted import planted
from scoretag.benchmarks.labels import KINDS, compare, crossing, labels_bench, rate, strata
from scoretag.cli import cli


def test_ratings_carry_the_offsets_and_pairs_cancel_them():
    data = planted(n=4000, dim=16, test=0, seed=1)
    rng = np.random.default_rng(0)
    rows = np.arange(4000)
    ratings = rate(data, rows, rng)
    assert set(np.unique(ratings)) <= {1, 2, 3, 4, 5}
    assert np.corrcoef(ratings, data.quality)[0, 1] > 0.8
    # Pairs: the better item wins far more often than not, close items tie, order is fair.
    first, second = rows[:2000], rows[2000:]
    outcome = compare(data, first, second, rng)
    gap = data.quality[first] - data.quality[second]
    decided = outcome != TIE
    agree = np.where(gap[decided] > 0, outcome[decided] == WON, outcome[decided] == LOST)
    assert agree.mean() > 0.8
    assert 0.05 < (~decided).mean() < 0.3
    swapped = compare(data, second, first, np.random.default_rng(0))
    assert abs((swapped == WON).mean() - (outcome == LOST).mean()) < 0.03


def test_strata_are_style_and_score_decile():
    data = planted(n=3000, dim=16, test=500, seed=2)
    pool = strata(data, np.random.default_rng(0))
    assert pool.height == len(data.pool_index)
    parts = pool["stratum"].str.extract_groups(r"^planted/general/d(\d+)/c(\d+)$")
    deciles = parts.struct.field("1").cast(pl.Int64)
    assert deciles.min() == 0 and deciles.max() == 9


def test_the_bench_answers_with_its_curves():
    result = labels_bench(n=3000, dim=32, test=1000, budgets=(100, 400), seed=0, seeds=2)
    assert len(result["spearman_by_seed"]) == 2
    for kind in KINDS:
        runs = [run[kind][-1] for run in result["spearman_by_seed"]]
        assert result["spearman"][kind][-1] == round(sum(runs) / 2, 5)
    assert set(result["spearman"]) == set(KINDS)
    for kind, curve in result["spearman"].items():
        assert len(curve) == 2 and curve[1] > curve[0] > 0.3, (kind, curve)
    best = max(curve[-1] for curve in result["spearman"].values())
    assert result["target_spearman"] == round(0.95 * best, 5)
    reach = result["judgments_to_target"]
    for kind, curve in result["spearman"].items():
        assert reach[kind] == crossing((100, 400), curve, result["target_spearman"])
    reached = {k: v for k, v in reach.items() if v is not None}
    assert reach[result["fewer"]] == min(reached.values())


def test_the_crossing_is_interpolated_in_log_judgments():
    assert crossing((100, 400), (0.5, 0.9), 0.4) == 100
    assert crossing((100, 400), (0.5, 0.9), 0.7) == 200  # halfway in log: sqrt(100 * 400)
    assert crossing((100, 400), (0.5, 0.9), 0.95) is None


def test_bench_labels_on_the_command_line():
    args = ["bench", "labels", "--n", "2000", "--dim", "16", "--test", "500", "--seeds", "1"]
    result = CliRunner().invoke(cli, [*args, "--budgets", "50,200", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["budgets"] == [50, 200]
    bad = CliRunner().invoke(cli, [*args, "--budgets", "5"])
    assert bad.exit_code != 0 and "10 judgments or more" in bad.output
