"""Pair judgments resolved (manual_labels' pairs.parquet) and exported (`label export
--pairs`)."""

from __future__ import annotations

import polars as pl

from assets.labels.checks import manual_labels_position_bias
from assets.labels.pairs import PAIRS, resolve_pairs
from assets.labels.paths import pairs_path
from assets.labels.store import LabelStore
from assets.pool.paths import pool_path
from tests.labels.test_assets import CHECKS, _resources, pooled  # noqa: F401 (a fixture)
from tests.labels.test_cli_label import run


def _materialize(layout):
    import dagster as dg

    from assets.labels.assets import manual_labels

    checks = [*CHECKS, manual_labels_position_bias]
    return dg.materialize(
        [manual_labels, *checks], resources=_resources(layout), selection=[manual_labels.key]
    )


def judge(store: LabelStore) -> None:
    store.add_pair("a", "b", "ann", "left", created_at="2024-01-01T00:00:00.000+00:00")
    store.add_pair("b", "a", "ann", "left", created_at="2024-01-01T00:01:00.000+00:00")
    store.add_pair("a", "b", "bob", "tie", created_at="2024-01-01T00:02:00.000+00:00")
    store.add_pair("c", "d", "bob", "right", created_at="2024-01-01T00:03:00.000+00:00")
    store.add_pair("c", "d", "bob", "skip")  # a skip is not a choice: the right stands
    store.add_pair("e", "f", "ann", "left")
    store.undo_pair("ann")  # left out
    store.add_pair("x", "a", "ann", "right", created_at="2024-01-01T00:04:00.000+00:00")


def test_each_labelers_latest_choice_per_unordered_pair(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        judge(store)
        events = store.pair_events()
    pairs = resolve_pairs(events, ["a", "b", "c", "d", "e", "f"])
    assert dict(pairs.schema) == PAIRS
    rows = sorted(pairs.iter_rows())
    assert rows == [
        ("a", "b", "tie", None, "bob", 1, "2024-01-01T00:02:00.000+00:00", True),
        ("b", "a", "left", "b", "ann", 2, "2024-01-01T00:01:00.000+00:00", True),
        ("c", "d", "right", "d", "bob", 1, "2024-01-01T00:03:00.000+00:00", True),
        ("x", "a", "right", "a", "ann", 1, "2024-01-01T00:04:00.000+00:00", False),
    ]


def test_manual_labels_writes_the_pairs_with_metadata(pooled):  # noqa: F811
    keys = pl.read_parquet(pool_path(pooled))["post_key"].to_list()
    with LabelStore(pooled.label_store) as store:
        store.add(keys[0], "ann", 4)
        for i in range(40):
            store.add_pair(keys[i], keys[i + 1], "ann", "left" if i % 4 else "right")
        store.add_pair(keys[0], keys[1], "bob", "tie")
    result = _materialize(pooled)
    (mat,) = result.asset_materializations_for_node("manual_labels")
    meta = {k: v.value for k, v in mat.metadata.items()}
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name.endswith("position_bias")
    ]
    assert not check.passed, "ann chose left 30 times of 40: a position bias"
    assert check.metadata["biased"].value == 1
    assert meta["pairs"] == 41 and meta["pair_events"] == 41 and meta["pairs_not_in_pool"] == 0
    assert meta["left_share"] == 30 / 40
    assert "ann" in meta["position_bias"] and "bob" in meta["pair_agreement"]
    pairs = pl.read_parquet(pairs_path(pooled))
    assert dict(pairs.schema) == PAIRS and pairs.height == 41
    assert pairs.filter(labeler="bob")["winner_key"].to_list() == [None]


def test_without_pairs_the_table_is_empty_with_its_columns(pooled):  # noqa: F811
    result = _materialize(pooled)
    assert all(e.passed for e in result.get_asset_check_evaluations() if "bias" in e.check_name)
    pairs = pl.read_parquet(pairs_path(pooled))
    assert pairs.is_empty() and dict(pairs.schema) == PAIRS


def test_export_pairs_as_csv_and_parquet(home, tmp_path):
    with LabelStore(home / "labels.sqlite") as store:
        judge(store)
        store.add("a", "ann", 3)
    csv, parquet, labels = tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "l.csv"
    result = run(home, "export", "--pairs", str(csv))
    assert result.exit_code == 0, result.output
    assert "Exported 5 pair judgments" in result.output and not labels.exists()
    written = pl.read_csv(csv)
    assert written.columns == [
        "left_key",
        "right_key",
        "choice",
        "winner_key",
        "labeler",
        "created_at",
        "repeat",
        "source",
    ]
    assert written["labeler"].to_list() == ["ann", "ann", "bob", "bob", "ann"]
    assert written["repeat"].to_list() == [False, True, False, False, False]
    assert written["winner_key"].to_list() == ["a", "b", None, "d", "a"]
    both = run(home, "export", str(labels), "--pairs", str(parquet))
    assert both.exit_code == 0 and labels.is_file()
    assert pl.read_parquet(parquet).drop("created_at").equals(written.drop("created_at"))
    nothing = run(home, "export")
    assert nothing.exit_code == 2 and "give FILE, --pairs FILE, or both" in nothing.output
