"""The image_evaluations asset with its checks, its sensor, and `scoretag evaluate`, on a
storage root of the demo profile with a head made for its tiny backbone."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest
from click.testing import CliRunner

from assets.evaluation.assets import evaluation_sets, image_evaluations
from assets.evaluation.checks import image_evaluations_resolution, image_evaluations_scores
from assets.evaluation.paths import results_dir, set_mark, sets_dir
from assets.head.paths import registry
from orchestration.profile import load_profile
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.sensors import evaluations_sensor
from orchestration.storage import Layout
from scoretag.cli import cli
from tests.evaluation.conftest import PROMPTS, SEEDS, TINY, head_for, write_set

IMAGES = len(PROMPTS) * len(SEEDS)


@pytest.fixture
def home(tmp_path) -> Layout:
    """A demo-profile root with an active head and two sets: `a`, and `b` blurred."""
    layout = Layout(home=tmp_path / "home").ensure()
    heads = registry(layout)
    heads.activate(head_for(heads, TINY, 0).version, "a test")
    write_set(sets_dir(layout) / "a", broken=True)
    write_set(sets_dir(layout) / "b", blur=3.0)
    return layout


def resources(layout: Layout) -> dict:
    profile = load_profile("demo", layout.home)
    return {
        "scoretag": ScoretagResource.for_profile(profile),
        "backbone": BackboneResource.from_settings(profile.settings.backbone),
    }


def materialize(
    layout: Layout, name: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(evaluation_sets.name, [name])
    return dg.materialize(
        [image_evaluations, image_evaluations_scores, image_evaluations_resolution],
        partition_key=name,
        resources=resources(layout),
        instance=instance,
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("image_evaluations")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_set_is_scored_checked_and_compared_with_the_set_before(home):
    with dg.instance_for_test() as instance:
        first = materialize(home, "a", instance)
        assert first.success
        meta = _metadata(first)
        assert (meta["found"], meta["scored"], meta["failed"]) == (IMAGES + 1, IMAGES, 1)
        assert meta["embedded"] == IMAGES and meta["cached_hits"] == 0
        assert "truncated" in meta["failures_by_reason"]
        assert "no stored cut-points" in meta["calibration"]  # no catalog: no buckets
        assert "good_rate" not in meta and 0 <= meta["score_mean"] <= 1
        assert meta["score_histogram"].startswith("![score distributions](data:image/png;base64,")
        checks = _checks(first)
        assert checks["image_evaluations_scores"].passed
        (mat,) = first.asset_materializations_for_node("image_evaluations")
        assert mat.tags["dagster/data_version"] == set_mark(home, "a")

        second = materialize(home, "b", instance)
        assert second.success
        meta = _metadata(second)
        assert "| a |" in meta["sets_side_by_side"] or " a " in meta["sets_side_by_side"]
        differences = json.loads((results_dir(home, "b") / "summary.json").read_text())
        rows = differences["comparison"]["differences"]
        assert {r["base_set"] for r in rows} == {"a"} and {r["other_set"] for r in rows} == {"b"}
        assert next(r for r in rows if r["metric"] == "score_mean")["n_pairs"] == IMAGES
        resolution = _checks(second)["image_evaluations_resolution"]
        assert resolution.severity == dg.AssetCheckSeverity.WARN
        shown = sum(r["excludes_zero"] for r in rows)
        assert resolution.passed == (shown > 0)


def test_a_missing_folder_or_no_head_fails_with_the_reason(home, tmp_path):
    with dg.instance_for_test() as instance:
        result = materialize(home, "nowhere", instance)
        assert not result.success
        registry(home).active_path.unlink()
        result = materialize(home, "a", instance)
        assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert "no head to score with" in failures[0].step_failure_data.error.message


def _settle(layout: Layout) -> None:
    old = time.time() - 120
    for path in sets_dir(layout).rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)


def test_the_sensor_evaluates_settled_sets_once_and_again_under_a_new_head(home):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources(home))
        fresh = evaluations_sensor(context)
        assert isinstance(fresh, dg.SkipReason), "files younger than 30 s may still be copied"
        _settle(home)
        result = evaluations_sensor(context)
        assert sorted(r.partition_key for r in result.run_requests) == ["a", "b"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["a", "b"]
        instance.add_dynamic_partitions(evaluation_sets.name, ["a", "b"])
        assert materialize(home, "a", instance).success
        result = evaluations_sensor(context)
        assert [r.partition_key for r in result.run_requests] == ["b"]
        assert not result.dynamic_partitions_requests
        heads = registry(home)
        heads.activate(head_for(heads, TINY, 1).version, "another head")
        result = evaluations_sensor(context)
        assert sorted(r.partition_key for r in result.run_requests) == ["a", "b"]


def test_scoretag_evaluate_compares_folders_and_sets(home, tmp_path):
    args = ["--profile", "demo", "--home", str(home.home)]
    elsewhere = write_set(tmp_path / "ckpt-1000", blur=1.0)
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "evaluate", "a", str(elsewhere), "--compare", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert list(document["sets"]) == ["a", "ckpt-1000"]
    assert (
        document["sets"]["a"]["failed"] == 1 and document["sets"]["ckpt-1000"]["scored"] == IMAGES
    )
    (comparison,) = document["comparisons"]
    assert comparison["baseline"] == "a"
    assert {r["metric"] for r in comparison["differences"]} >= {"score_mean", "clip_score"}
    assert (sets_dir(home) / "ckpt-1000").resolve() == elsewhere.resolve()

    shown = runner.invoke(
        cli, [*args, "evaluate", "a", "ckpt-1000", "--compare", "--plot", str(tmp_path / "h.png")]
    )
    assert shown.exit_code == 0, shown.output
    assert "ckpt-1000 - a" in shown.output and "score_mean" in shown.output
    assert "truncated" in shown.output and (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"

    for bad, message in (
        (["evaluate", "a", "--compare"], "--compare needs two sets"),
        (["evaluate", "nothing-here"], "neither a folder nor an evaluation set"),
        (["evaluate", str(tmp_path / "ckpt-1000"), "--name", "a"], "already"),
        (["run", "--job", "evaluate"], "scoretag evaluate"),
        (["run", "--select", "image_evaluations"], "scoretag evaluate"),
    ):
        failed = runner.invoke(cli, [*args, *bad])
        assert failed.exit_code != 0 and message in failed.output, failed.output


def test_a_selection_reaching_the_evaluations_leaves_them_to_their_own_runs(tmp_path):
    from orchestration.definitions import build_defs
    from orchestration.jobs import IMAGE_EVALUATIONS
    from orchestration.runner import RunRequestError, select_assets

    defs = build_defs(load_profile("demo", tmp_path))
    rest, partitioned = select_assets(defs, "aesthetic_head+")
    assert IMAGE_EVALUATIONS in partitioned and IMAGE_EVALUATIONS not in rest
    assert dg.AssetKey("scored_catalog") in rest
    with pytest.raises(RunRequestError, match="scoretag evaluate"):
        select_assets(defs, "image_evaluations")
