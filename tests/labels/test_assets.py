"""manual_labels as Dagster materializes it, its checks, and the sensor that re-runs it."""

import dagster as dg
import polars as pl
import pytest

from assets.labels.assets import manual_labels
from assets.labels.checks import (
    manual_labels_coverage,
    manual_labels_in_pool,
    manual_labels_self_consistency,
    manual_labels_values,
)
from assets.labels.paths import labels_path
from assets.labels.store import LabelStore
from assets.pool.assets import rating_pool
from assets.pool.paths import pool_path
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.sensors import labels_sensor

CHECKS = [
    manual_labels_values,
    manual_labels_in_pool,
    manual_labels_coverage,
    manual_labels_self_consistency,
]


@pytest.fixture
def pooled(scored_home):
    resources = _resources(scored_home)
    dg.materialize([rating_pool], resources=resources)
    return scored_home


def _resources(layout) -> dict:
    return {"scoretag": ScoretagResource.for_profile(load_profile("demo", layout.home))}


def _materialize(layout) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [manual_labels, *CHECKS], resources=_resources(layout), selection=[manual_labels.key]
    )


def test_labels_resolve_with_metadata_and_checks(pooled):
    keys = pl.read_parquet(pool_path(pooled))["post_key"].to_list()
    with LabelStore(pooled.label_store) as store:
        for i, key in enumerate(keys[:300]):
            store.add(key, "simulated-steady", 1 + i % 5)
            if i < 150:
                store.add(key, "ann", 1 + (i + 1) % 5)
        for key in keys[:10]:  # hidden repeats, the same label again
            store.add(key, "simulated-steady", 1 + keys.index(key) % 5)
        store.add("gelbooru:1", "ann", 3, source="import")  # not in the pool: kept, flagged
    result = _materialize(pooled)
    (mat,) = result.asset_materializations_for_node("manual_labels")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["dagster/row_count"] == 301 and meta["not_in_pool"] == 1
    assert meta["simulated_labelers"] == "simulated-steady"
    assert "kappa" in meta["agreement"] and "data:image/png" in meta["label_distribution"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["manual_labels_values"].passed
    assert not checks["manual_labels_in_pool"].passed  # the imported label outside the pool
    assert checks["manual_labels_coverage"].passed  # 300 of 420 > 50%
    assert checks["manual_labels_self_consistency"].passed
    labels = pl.read_parquet(labels_path(pooled))
    both = labels.filter(pl.col("labelers") == 2)
    assert both.height == 150 and both["target"].is_between(1, 5).all()


def test_coverage_warns_when_few_are_labeled(pooled):
    key = pl.read_parquet(pool_path(pooled))["post_key"][0]
    with LabelStore(pooled.label_store) as store:
        store.add(key, "ann", 4)
    checks = {e.check_name: e for e in _materialize(pooled).get_asset_check_evaluations()}
    coverage = checks["manual_labels_coverage"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN


def test_without_any_label_the_asset_is_empty_not_broken(pooled):
    result = _materialize(pooled)
    (mat,) = result.asset_materializations_for_node("manual_labels")
    assert mat.metadata["dagster/row_count"].value == 0


def test_labels_sensor_runs_when_the_store_has_new_events(pooled):
    with dg.DagsterInstance.ephemeral() as instance:

        def tick(cursor=None):
            return labels_sensor(
                dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources=_resources(pooled)
                )
            )

        assert isinstance(tick(), dg.SkipReason)  # no store yet
        key = pl.read_parquet(pool_path(pooled))["post_key"][0]
        with LabelStore(pooled.label_store) as store:
            store.add(key, "ann", 4)
        first = tick()
        assert len(first.run_requests) == 1 and first.cursor == "1/0"
        assert isinstance(tick(first.cursor), dg.SkipReason)
        with LabelStore(pooled.label_store) as store:
            store.undo("ann")
        assert tick(first.cursor).cursor == "2/0"  # an undo is news too
        other = pl.read_parquet(pool_path(pooled))["post_key"][1]
        with LabelStore(pooled.label_store) as store:
            store.add_pair(key, other, "ann", "left")
        assert tick("2/0").cursor == "2/1"  # and so is a pair choice
