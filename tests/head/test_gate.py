"""The quality gate never steps back: a new head replaces the active one only when it is at
least as good on labels neither was trained on (all labels against an imported head, the
labels added since against a trained one, else each head's CV figure)."""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner

from assets.catalog.assets import scored_catalog
from assets.head.artifact import build_card
from assets.head.assets import aesthetic_head
from assets.head.checks import aesthetic_head_quality_gate
from assets.head.gate import Comparison, compare, decide, gate_rows, trained_on
from assets.head.models import fit_ridge, to_target
from assets.head.paths import last_training_path, registry
from assets.head.planted import planted
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.storage import Layout
from scoretag.cli import cli
from tests.head.test_assets import _home, _tiny

# --- compare() and decide() on hand-sized data ---------------------------------------------


class Fixed:
    """An "active head" whose prediction of row i of X is table[X[i, 0]]: it can only be
    asked about the rows the gate picks, and says which."""

    def __init__(self, table, card):
        self.table = np.asarray(table, dtype=float)
        self.card = card
        self.asked: list[int] = []

    def predict(self, X):
        rows = [int(v) for v in X[:, 0]]
        self.asked += rows
        return self.table[rows]


def _imported(table):
    return Fixed(table, {"version": "laion1", "head_type": "laion-linearMSE", "labels": None})


def _trained(table, keys, cv=0.5):
    card = {
        "version": "old1",
        "head_type": "ridge",
        "labels": {"count": len(keys), "hash": "x", "post_keys": list(keys)},
        "metrics": {"cv": {"head": {"overall": {"spearman": cv}}}},
    }
    return Fixed(table, card)


def _cv(head, ridge=None):
    ridge = head if ridge is None else ridge
    return {"head": {"overall": {"spearman": head}}, "ridge": {"overall": {"spearman": ridge}}}


def _compare(active, labels, new_oof, new_cv=0.4, min_fresh=3, **kw):
    n = len(labels)
    return compare(
        active,
        labels=np.asarray(labels, float),
        post_keys=np.array([f"danbooru:{i}" for i in range(n)]),
        X=np.arange(n, dtype=np.float32).reshape(-1, 1),
        new_oof=np.asarray(new_oof, float),
        new_cv_spearman=new_cv,
        min_fresh_labels=min_fresh,
        **kw,
    )


LABELS = [1, 2, 3, 4, 5]
RIGHT = [0.1, 0.2, 0.3, 0.4, 0.5]  # Spearman 1
ONE_SWAP = [0.1, 0.2, 0.3, 0.5, 0.4]  # sum d^2 = 2: 1 - 6*2 / (5*24) = 0.9
TWO_SWAPS = [0.2, 0.1, 0.3, 0.5, 0.4]  # sum d^2 = 4: 1 - 6*4 / 120 = 0.8


def test_against_an_imported_head_every_label_counts():
    active = _imported(ONE_SWAP)
    versus = _compare(active, LABELS, RIGHT)
    assert versus.method == "all_labels" and versus.labels == 5
    assert versus.new_spearman == pytest.approx(1.0)
    assert versus.active_spearman == pytest.approx(0.9)
    assert sorted(active.asked) == [0, 1, 2, 3, 4]
    decision = decide(_cv(0.5), 0.3, 0.02, versus)
    assert decision.passed
    assert "at least as good as the active head" in decision.reason
    assert decision.versus["new_spearman"] == pytest.approx(1.0)


def test_worse_than_an_imported_head_fails_though_it_passes_the_rest():
    versus = _compare(_imported(ONE_SWAP), LABELS, TWO_SWAPS)
    assert versus.new_spearman == pytest.approx(0.8)
    assert versus.active_spearman == pytest.approx(0.9)
    decision = decide(_cv(0.5), 0.3, 0.02, versus)
    assert not decision.passed
    assert "worse than the active head" in decision.reason
    assert "0.800 against 0.900 of the active head laion1" in decision.reason
    assert "all 5 labels" in decision.reason
    # A margin of 0.1 lets 0.8 against 0.9 through (rounding aside); 0.05 does not.
    assert decide(_cv(0.5), 0.3, 0.02, versus, active_margin=0.1 + 1e-9).passed
    assert not decide(_cv(0.5), 0.3, 0.02, versus, active_margin=0.05).passed


def test_against_a_trained_head_only_the_labels_added_since_count():
    # Rows 0-2 trained the active head; rows 3-7 are new. Among those the labels are
    # 1, 2, 3, 4, 5 (rows 3..7); on the old rows the new head's predictions are reversed
    # and the active head's perfect, so counting them would change both figures.
    labels = [5, 3, 1, *LABELS]
    new = [0.0, 0.5, 1.0, *RIGHT]
    active = _trained([0.9, 0.5, 0.1, *TWO_SWAPS], ["danbooru:0", "danbooru:1", "danbooru:2"])
    versus = _compare(active, labels, new, min_fresh=5)
    assert versus.method == "fresh_labels" and versus.labels == 5
    assert sorted(active.asked) == [3, 4, 5, 6, 7]
    assert versus.new_spearman == pytest.approx(1.0)
    assert versus.active_spearman == pytest.approx(0.8)
    assert versus.active_trained_on == 3
    assert decide(_cv(0.5), 0.3, 0.02, versus).passed
    flipped = _compare(active, labels, [0.0, 0.5, 1.0, *TWO_SWAPS[::-1]], min_fresh=5)
    assert flipped.new_spearman == pytest.approx(-0.8)
    assert not decide(_cv(0.5), 0.3, 0.02, flipped).passed


def test_too_few_new_labels_compare_cv_figures():
    labels = [5, 3, 1, *LABELS]
    active = _trained(np.zeros(8), ["danbooru:0", "danbooru:1", "danbooru:2"], cv=0.61)
    versus = _compare(active, labels, np.zeros(8), new_cv=0.6, min_fresh=6)
    assert versus.method == "cross_validation"
    assert "only 5 labels added since" in versus.note and "min_fresh_labels 6" in versus.note
    assert (versus.new_spearman, versus.active_spearman) == (0.6, 0.61)
    assert (versus.labels, versus.active_labels) == (8, 3)
    assert active.asked == []
    decision = decide(_cv(0.6), 0.3, 0.02, versus)
    assert not decision.passed and "cross-validated" in decision.reason
    assert decide(_cv(0.6), 0.3, 0.02, versus, active_margin=0.02).passed
    better = _compare(active, labels, np.zeros(8), new_cv=0.61, min_fresh=6)
    assert decide(_cv(0.61), 0.3, 0.02, better).passed  # as good is good enough


def test_a_head_without_a_label_list_falls_back_to_cv():
    old = Fixed(np.zeros(5), {**_trained([], [], cv=0.7).card, "labels": {"count": 4, "hash": "x"}})
    assert trained_on(old.card) is None
    versus = _compare(old, LABELS, RIGHT, new_cv=0.65)
    assert versus.method == "cross_validation" and "does not list" in versus.note
    assert versus.active_spearman == 0.7 and versus.active_trained_on == 4
    assert not decide(_cv(0.65), 0.3, 0.02, versus).passed
    bare = Fixed(np.zeros(5), {"version": "x", "labels": {"count": 4}})
    nothing = _compare(bare, LABELS, RIGHT)
    assert nothing.method == "no_figures" and not nothing.compared
    assert decide(_cv(0.5), 0.3, 0.02, nothing).passed


def test_new_labels_all_equal_fall_back_to_cv():
    labels = [1, 5, 3, 3, 3, 3]
    active = _trained(np.zeros(6), ["danbooru:0", "danbooru:1"], cv=0.2)
    versus = _compare(active, labels, np.linspace(0, 1, 6), min_fresh=3)
    assert versus.method == "cross_validation" and "all equal" in versus.note


def test_nothing_to_compare_with():
    assert _compare(None, LABELS, RIGHT).method == "no_active_head"
    other = _compare(_imported(ONE_SWAP), LABELS, TWO_SWAPS, same_backbone=False)
    assert other.method == "other_backbone" and not other.compared
    assert decide(_cv(0.5), 0.3, 0.02, other).passed
    same = _compare(_imported(ONE_SWAP), LABELS, TWO_SWAPS, new_version="laion1")
    assert same.method == "same_head"
    # The head's own figures still gate it.
    assert not decide(_cv(0.2), 0.3, 0.02, other).passed


def test_an_undefined_figure_of_the_new_head_never_passes():
    versus = Comparison("all_labels", "", "a", "laion", 0, 5, 5, math.nan, 0.1)
    assert not versus.holds(2.0)
    assert Comparison("all_labels", "", "a", "laion", 0, 5, 5, 0.1, math.nan).holds(0.0)


def test_gate_rows_put_both_heads_side_by_side():
    versus = _compare(_imported(ONE_SWAP), LABELS, TWO_SWAPS)
    decision = decide(_cv(0.5), 0.3, 0.02, versus)
    record = {"version": "new1", "head_type": "mlp", "labels": 5, "gate": decision.to_dict()}
    new, old = gate_rows(record)
    assert new == {
        "head": "new",
        "version": "new1",
        "type": "mlp",
        "trained on": 5,
        "compared on": "all labels",
        "n": 5,
        "spearman": pytest.approx(0.8),
        "verdict": "not activated",
    }
    assert old["version"] == "laion1" and old["trained on"] == 0
    assert old["spearman"] == pytest.approx(0.9) and old["verdict"] == "stays active"


# --- aesthetic_head through Dagster: real ridge heads on planted data ----------------------

OPEN = (
    "[head]\nhead_type = 'ridge'\nmin_spearman = -1.0\nridge_margin = 2.0\n"
    "active_margin = 0.0\nmin_fresh_labels = 30\n"
)


@pytest.fixture(scope="module")
def data():
    p = planted(n=1200, dim=64, clusters=6, test=0, seed=1)
    return p.X, p.labels


def _materialize(layout: Layout, config, extra=()) -> dg.ExecuteInProcessResult:
    profile = load_profile("demo", layout.home, config)
    return dg.materialize(
        [aesthetic_head, aesthetic_head_quality_gate, *extra],
        resources={
            "scoretag": ScoretagResource.for_profile(profile, str(config)),
            "backbone": BackboneResource.from_settings(profile.settings.backbone),
        },
        raise_on_error=False,
    )


def _round(tmp_path, name, labels, X, before: Layout | None, assets=()):
    """Train on `labels` (rows 0..len-1 of X; the last 5 without embeddings) in a fresh
    storage root holding the registry of `before`."""
    layout = _home(tmp_path / name, np.asarray(labels), X[: len(labels)])
    if before is not None:
        shutil.copytree(registry(before).dir, registry(layout).dir, dirs_exist_ok=True)
    config = tmp_path / "open.toml"
    config.write_text(OPEN)
    result = _materialize(layout, config, extra=assets)
    mats = result.asset_materializations_for_node("aesthetic_head")
    meta = {k: v.value for k, v in mats[0].metadata.items()}
    return layout, result, meta


def _noised(labels, share, seed):
    rng = np.random.default_rng(seed)
    out = np.array(labels)
    pick = rng.random(len(out)) < share
    out[pick] = rng.integers(1, 6, int(pick.sum()))
    return out


def test_a_worse_head_stays_inactive_and_a_better_one_replaces_it(tmp_path, data):
    X, truth = data
    # A: 400 labels, 40% of them noise. It becomes active: nothing was before.
    a_home, result, a = _round(tmp_path, "a", _noised(truth[:400], 0.4, 0), X, None)
    assert result.success and a["gate_passed"] and a["gate_comparison"] == "no_active_head"
    heads = registry(a_home)
    good = a["version"]
    assert heads.active_version() == good
    assert trained_on(heads.load(good).card) == {f"danbooru:{i}" for i in range(395)}

    # B: the same 400 posts with their labels shuffled, and 100 new true ones. The gate's
    # other conditions are open here (the demo profile's active_margin is set back to 0), so
    # only the comparison on the 100 labels added since A (A trained on rows 0-394, the
    # rows up to 494 have embeddings now) keeps B out; the catalog is not rescored.
    labels = np.concatenate([np.random.default_rng(1).permutation(truth[:400]), truth[400:500]])
    b_home, result, b = _round(tmp_path, "b", labels, X, a_home, assets=[scored_catalog])
    assert not result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "worse than the active head" in evaluation.description
    assert f"the active head stays {good}" in evaluation.description
    assert b["gate_comparison"] == "fresh_labels" and b["gate_labels_compared"] == 100
    assert b["gate_new_spearman"] < b["gate_active_spearman"]
    assert evaluation.metadata["new_spearman"].value == b["gate_new_spearman"]
    assert evaluation.metadata["compared_with"].value == good
    b_heads = registry(b_home)
    assert b_heads.active_version() == good
    assert b["version"] in {c["version"] for c in b_heads.cards()}  # kept, not active
    assert not result.asset_materializations_for_node("scored_catalog")
    assert not (b_home.home / "catalog.duckdb").exists()
    assert f"| new | {b['version']} |" in b["gate_table"]
    assert (
        f"| active before | {good} | ridge | 395 | labels since active | 100 |" in (b["gate_table"])
    )
    assert "stays active" in b["gate_table"]
    # The figures are those of the 100 new labels, recomputed here from the heads.
    from assets.head import metrics

    rows = np.arange(395, 495)
    stored = X[rows].astype(np.float16).astype(np.float32)  # the store keeps fp16
    active_scores = b_heads.load(good).predict(stored)
    assert metrics.spearman(labels[rows], active_scores) == pytest.approx(b["gate_active_spearman"])

    # C: 900 true labels, compared with A (still active) on the 500 since A: it replaces A.
    c_home, result, c = _round(tmp_path, "c", truth[:900], X, b_home)
    assert result.success and c["gate_passed"]
    assert c["gate_comparison"] == "fresh_labels" and c["gate_labels_compared"] == 500
    assert c["gate_new_spearman"] > c["gate_active_spearman"]
    c_heads = registry(c_home)
    assert c_heads.active_version() == c["version"] != good
    assert c_heads.history()[-1]["by"] == "gate"

    # The CLI shows each head's gate, and one head's in full.
    runner = CliRunner()
    listed = runner.invoke(cli, ["--home", str(c_home.home), "head", "list"])
    assert listed.exit_code == 0, listed.output
    short = [
        f"{v:.2f}".replace("0.", ".", 1)
        for v in (b["gate_new_spearman"], b["gate_active_spearman"])
    ]
    assert "vs active" in listed.output and f"FAIL {short[0]}<{short[1]}" in listed.output
    assert "pass, first" in listed.output
    detail = runner.invoke(
        cli, ["--home", str(c_home.home), "head", "list", "--gate", b["version"]]
    )
    assert detail.exit_code == 0, detail.output
    assert "failed" in detail.output and "stays active" in detail.output
    assert good in detail.output and f"{b['gate_active_spearman']:.3f}" in detail.output
    assert "worse than the active head" in detail.output
    assert registry(c_home).gate(good)["gate"]["versus"]["method"] == "no_active_head"

    # D: 15 labels more than C (rows 900-914, 10 with embeddings): too few new labels, so the
    # two heads' own CV figures decide.
    _, _, d = _round(tmp_path, "d", truth[:915], X, c_home)
    assert d["gate_comparison"] == "cross_validation"
    c_card = c_heads.load(c["version"]).card
    assert d["gate_active_spearman"] == c_card["metrics"]["cv"]["head"]["overall"]["spearman"]
    assert d["gate_new_spearman"] == d["cv_spearman"]


def test_an_imported_head_is_compared_on_every_label(tmp_path, data):
    X, truth = data
    # An imported head for the test backbone, trained on none of our labels (its card has
    # no `labels`, as a LAION import's): a ridge fit on 100 posts no label here covers. Its
    # type is not "laion-*": a LAION card names OpenAI CLIP's QuickGELU space, which the
    # tiny test backbone does not make.
    net = fit_ridge(X[1000:1100], to_target(truth[1000:1100])).net()
    card = build_card(
        net, backbone=asdict(_tiny()), head_type="imported-linear", labels=None, metrics={}
    )
    seed = Layout(home=tmp_path / "seed").ensure()
    laion = registry(seed).save(net, card)
    registry(seed).activate(laion.version, "imported")

    shuffled = np.random.default_rng(2).permutation(truth[:400])
    worse_home, result, worse = _round(tmp_path, "worse", shuffled, X, seed)
    assert not result.success and not worse["gate_passed"]
    assert worse["gate_comparison"] == "all_labels" and worse["gate_labels_compared"] == 395
    assert registry(worse_home).active_version() == laion.version
    record = registry(worse_home).gate(worse["version"])
    assert record["gate"]["versus"]["active_type"] == "imported-linear"
    assert record["gate"]["versus"]["active_trained_on"] == 0
    assert last_training_path(worse_home).is_file()

    better_home, result, better = _round(tmp_path, "better", truth[:900], X, worse_home)
    assert result.success and better["gate_passed"]
    assert better["gate_comparison"] == "all_labels" and better["gate_labels_compared"] == 895
    assert better["gate_new_spearman"] > better["gate_active_spearman"]
    assert registry(better_home).active_version() == better["version"]
