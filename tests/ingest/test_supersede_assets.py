"""Superseded exports as Dagster runs them: raw_posts partitions of two and three e621 exports,
the metadata that says what superseded what, retention after a run, and what the inbox
sensor does once a file is gone."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from assets.ingest.assets import raw_files, raw_posts
from assets.ingest.checks import raw_posts_quarantine, raw_posts_schema
from assets.ingest.paths import RawFile, posts_files, superseded_files
from assets.ingest.supersede import TABLES
from assets.normalize.assets import normalized_scores
from orchestration import objectstore
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.sensors import SETTLE_SECONDS, inbox_sensor
from tests.ingest.test_supersede import _export, _posts

DAYS = [f"posts-2026-11-0{d}.csv.gz" for d in (1, 2, 3)]


def _profile(home: Path, retention: int | None = None, object_root: str | None = None):
    config = None
    if retention is not None:
        config = home / f"retention-{retention}.toml"
        config.write_text(f"[ingest]\nsuperseded_retention_days = {retention}\n")
    return load_profile("demo", home, config=config, object_root=object_root)


def _drop(profile, n: int) -> RawFile:
    """The n-th daily export (0: Nov 1): posts 1-(200-20n), updated that day."""
    from datetime import UTC, datetime

    updated = datetime(2026, 11, 1 + n, 3, tzinfo=UTC)
    raw = _export(profile.layout, DAYS[n], _posts(range(1, 201 - 20 * n), updated, 3 + n))
    then = time.time() - SETTLE_SECONDS - 5  # settled: the inbox sensor would look at it
    os.utime(raw.path(profile.layout), (then, then))
    return raw


def _resources(profile) -> dict:
    return {"scoretag": ScoretagResource.for_profile(profile, profile.config)}


def _materialize(profile, instance, raw: RawFile, **kwargs) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(raw_files.name, [raw.key])
    return dg.materialize(
        [raw_posts, raw_posts_schema, raw_posts_quarantine],
        partition_key=raw.key,
        resources=_resources(profile),
        instance=instance,
        **kwargs,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("raw_posts")
    return {k: v.value for k, v in mat.metadata.items()}


def _exists(layout, raw: RawFile) -> bool:
    tables = [raw.output(layout, t).is_file() for t in TABLES]
    return any([*tables, raw.path(layout).is_file()])


@pytest.mark.parametrize("root", ["local", "object"])
def test_raw_posts_partitions_supersede_and_retire(tmp_path: Path, memory_root: str, root: str):
    object_root = memory_root if root == "object" else None
    profile = _profile(tmp_path, object_root=object_root)  # the default: 14 days
    layout = profile.layout
    first, second = _drop(profile, 0), _drop(profile, 1)
    with dg.DagsterInstance.ephemeral() as instance:
        one = _materialize(profile, instance, first)
        assert one.success and all(e.passed for e in one.get_asset_check_evaluations())
        meta = _metadata(one)
        assert meta["full_export"] is True and meta["supersedes"] == "(none)"
        assert meta["snapshot_at"].startswith("2026-11-01 03:00:00")
        two = _materialize(profile, instance, second)
        assert two.success and all(e.passed for e in two.get_asset_check_evaluations())
        meta = _metadata(two)
        assert first.key in meta["supersedes"] and meta["retention_removed"] == "(none)"
        assert meta["superseded_by"] == ""
        assert posts_files(layout) == [second.output(layout, "posts")]
        assert _exists(layout, first)  # kept for lineage: 14 days by default
        if object_root:
            assert objectstore.is_remote(first.output(layout, "posts"))

        # Retention 0: the third export's run removes both older ones at once.
        third = _drop(profile, 2)
        profile = _profile(tmp_path, retention=0, object_root=object_root)
        three = _materialize(profile, instance, third)
        assert three.success and all(e.passed for e in three.get_asset_check_evaluations())
        meta = _metadata(three)
        assert second.key in meta["supersedes"]
        assert first.key in meta["retention_removed"] and second.key in meta["retention_removed"]
        assert not _exists(layout, first) and not _exists(layout, second)
        assert posts_files(layout) == [third.output(layout, "posts")]
        assert superseded_files(layout) == []
        assert (layout.site_inbox("e621") / "tags-2026-11-01.csv.gz").is_file()

        # Nothing downstream trips over the removed files, the sensor does not bring them back,
        # and a run of a removed partition says why it cannot run.
        resources = _resources(profile)
        scores = dg.materialize([normalized_scores], resources=resources, instance=instance)
        assert scores.success
        (mat,) = scores.asset_materializations_for_node("normalized_scores")
        assert mat.metadata["dagster/row_count"].value == 160
        tick = inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert tick.run_requests == []
        again = _materialize(profile, instance, first, raise_on_error=False)
        assert not again.success
        (failure,) = [e for e in again.all_events if e.is_step_failure]
        assert "superseded" in failure.step_failure_data.error.message


def test_retention_leaves_a_file_a_run_is_using(tmp_path: Path):
    profile = _profile(tmp_path, retention=0)
    layout = profile.layout
    first, second = _drop(profile, 0), _drop(profile, 1)
    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize(profile, instance, first).success
        # An embeddings run of the first file, still going.
        instance.add_run(
            dg.DagsterRun(
                job_name="embed",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus.STARTED,
                tags={"dagster/partition": first.key},
            )
        )
        meta = _metadata(_materialize(profile, instance, second))
        assert first.key in meta["supersedes"] and meta["retention_removed"] == "(none)"
        assert _exists(layout, first)
        # The older export ingested after the newer one: superseded at once, but its own run
        # never removes it (its checks read it next); the next ingest does.
        late = RawFile("e621", "posts-2026-10-31.csv.gz")
        (layout.site_inbox("e621") / late.name).write_bytes(first.path(layout).read_bytes())
        run = _materialize(profile, instance, late)
        assert run.success and all(e.passed for e in run.get_asset_check_evaluations())
        meta = _metadata(run)
        assert meta["superseded_by"] == f"e621/{second.name}"
        assert late.key not in meta["retention_removed"] and _exists(layout, late)
