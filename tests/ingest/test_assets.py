"""raw_posts and normalized_scores as Dagster runs them: partitions, checks, the sensor."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.ingest.assets import raw_files, raw_posts
from assets.ingest.checks import raw_posts_quarantine, raw_posts_schema
from assets.ingest.paths import RawFile
from assets.normalize.assets import normalized_scores, read_scores, scores_root
from assets.normalize.checks import norm_score_uniform, normalized_scores_suite
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from orchestration.sensors import SETTLE_SECONDS, inbox_sensor

DANBOORU = ("danbooru", "danbooru2021-posts000000000000.jsonl")
GELBOORU = ("gelbooru", "index-2017-06-03.xml")


@pytest.fixture
def home(tmp_path: Path, demo_layout) -> Path:
    """A fresh storage root whose inbox holds two demo files."""
    for site, name in (DANBOORU, GELBOORU):
        target = tmp_path / "inbox" / site
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo_layout.inbox / site / name, target / name)
    return tmp_path


def _resources(home: Path) -> dict:
    return {"scoretag": ScoretagResource.for_profile(load_profile("demo", home))}


def _materialize(home: Path, instance, key: str, **kwargs) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(raw_files.name, [key])
    return dg.materialize(
        [raw_posts, raw_posts_schema, raw_posts_quarantine],
        partition_key=key,
        resources=_resources(home),
        instance=instance,
        **kwargs,
    )


def test_a_partition_ingests_its_file_and_passes_its_checks(home: Path):
    key = "/".join(DANBOORU)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(home, instance, key)
        assert result.success
        (mat,) = result.asset_materializations_for_node("raw_posts")
        meta = mat.metadata
        assert meta["dagster/row_count"].value == 450 and meta["quarantined"].value == 2
        assert meta["format"].value == "danbooru_dump"
        assert meta["urls"].value == {"given": 0, "derived": 450, "none": 0}  # a dump has none
        assert "post_id is not an integer" in meta["quarantine_reasons"].value
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["raw_posts_schema"].passed and checks["raw_posts_quarantine"].passed
        assert checks["raw_posts_schema"].partition == key
    layout = load_profile("demo", home).layout
    posts = pl.read_parquet(RawFile.from_key(key).output(layout, "posts"))
    assert posts.height == 450 and set(posts["source_file"]) == {key}


def test_a_mostly_garbage_file_stops_at_the_threshold_and_changes_nothing(home: Path):
    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize(home, instance, "/".join(GELBOORU)).success
        dg.materialize([normalized_scores], resources=_resources(home), instance=instance)
        before = read_scores(load_profile("demo", home).layout)
        dump = (home / "inbox" / DANBOORU[0] / DANBOORU[1]).read_text().splitlines()
        garbage = home / "inbox" / "danbooru" / "garbage.jsonl"
        garbage.write_text("\n".join(dump[:3] + [line[:40] for line in dump[3:53]]) + "\n")
        result = _materialize(home, instance, "danbooru/garbage.jsonl", raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.error.message
        assert "garbage.jsonl" in message and "nothing from this file was loaded" in message
        assert "malformed JSON" in message
        dg.materialize([normalized_scores], resources=_resources(home), instance=instance)
    layout = load_profile("demo", home).layout
    raw = RawFile("danbooru", "garbage.jsonl")
    assert not raw.output(layout, "posts").exists()
    assert pl.read_parquet(raw.output(layout, "quarantine")).height == 50  # kept: they say why
    assert read_scores(layout).equals(before)


def test_normalized_scores_and_its_checks(home: Path):
    with dg.DagsterInstance.ephemeral() as instance:
        for key in ("/".join(DANBOORU), "/".join(GELBOORU)):
            assert _materialize(home, instance, key).success
        result = dg.materialize(
            [normalized_scores, normalized_scores_suite, norm_score_uniform],
            resources=_resources(home),
            instance=instance,
        )
    assert result.success
    (mat,) = result.asset_materializations_for_node("normalized_scores")
    assert mat.metadata["dagster/row_count"].value == 550
    assert "data:image/png;base64," in mat.metadata["norm_score_distribution"].value
    assert "Wilson lower bound" in mat.metadata["formula"].value
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["normalized_scores_suite"].passed
    assert checks["norm_score_uniform"].metadata["cohorts_tested"].value >= 1


def _tick(instance, home: Path, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=_resources(home))
    return inbox_sensor(context)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_inbox_sensor_requests_each_new_or_changed_file_once(home: Path):
    for path in (home / "inbox").rglob("*.*"):
        _age(path, SETTLE_SECONDS + 5)
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(instance, home)
        keys = sorted(r.partition_key for r in first.run_requests)
        assert keys == ["danbooru/" + DANBOORU[1], "gelbooru/" + GELBOORU[1]]
        (added,) = first.dynamic_partitions_requests
        assert sorted(added.partition_keys) == keys
        instance.add_dynamic_partitions(raw_files.name, keys)
        assert _tick(instance, home, first.cursor).run_requests == []
        changed = home / "inbox" / "gelbooru" / GELBOORU[1]
        changed.write_bytes(changed.read_bytes() + b"\n")
        copying = home / "inbox" / "gelbooru" / "still-copying.json"
        copying.write_text("{")
        _age(changed, SETTLE_SECONDS + 5)
        third = _tick(instance, home, first.cursor)
        assert [r.partition_key for r in third.run_requests] == ["/".join(GELBOORU)]
        assert third.dynamic_partitions_requests == []
        assert "gelbooru/still-copying.json" not in json.loads(third.cursor)


def test_inbox_sensor_skips_files_already_ingested_elsewhere(home: Path):
    for path in (home / "inbox").rglob("*.*"):
        _age(path, SETTLE_SECONDS + 5)
    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize(home, instance, "/".join(DANBOORU)).success  # e.g. `scoretag run`
        first = _tick(instance, home)  # a sensor that starts with no cursor
        assert [r.partition_key for r in first.run_requests] == ["/".join(GELBOORU)]
        assert "/".join(DANBOORU) in json.loads(first.cursor)


def test_files_the_sensor_ignores(home: Path):
    inbox = home / "inbox" / "e621"
    inbox.mkdir(parents=True)
    for name in (".hidden.json", "posts.json.tmp", "tags-2026-11-01.csv.gz"):
        (inbox / name).write_text("x")
        _age(inbox / name, SETTLE_SECONDS + 5)
    with dg.DagsterInstance.ephemeral() as instance:
        keys = {r.partition_key for r in _tick(instance, home).run_requests}
    assert not any(k.startswith("e621/") for k in keys)


@pytest.mark.parametrize(
    "key", ["danbooru", "e621/", "pixiv/a.json", "danbooru/a/b.json", "danbooru/.hidden"]
)
def test_partition_keys_name_a_site_and_a_file(key: str):
    with pytest.raises(ValueError, match="not a raw file partition"):
        RawFile.from_key(key)


def test_stage_tables_live_under_the_object_root(home: Path, memory_root: str):
    """With an object root (fsspec's memory:// standing for s3://), raw_posts and
    normalized_scores are written there whole, their checks read them there, and only the
    inbox stays on the local disk; a refused file still publishes its quarantine."""
    from orchestration import objectstore

    profile = load_profile("demo", home, object_root=memory_root)
    resources = {"scoretag": ScoretagResource.for_profile(profile)}
    keys = ["/".join(DANBOORU), "/".join(GELBOORU)]
    dump = (home / "inbox" / DANBOORU[0] / DANBOORU[1]).read_text().splitlines()
    garbage = home / "inbox" / "danbooru" / "garbage.jsonl"
    garbage.write_text("\n".join(dump[:3] + [line[:40] for line in dump[3:53]]) + "\n")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(raw_files.name, [*keys, "danbooru/garbage.jsonl"])
        for key in keys:
            result = dg.materialize(
                [raw_posts, raw_posts_schema, raw_posts_quarantine],
                partition_key=key,
                resources=resources,
                instance=instance,
            )
            assert result.success
            assert all(e.passed for e in result.get_asset_check_evaluations())
        refused = dg.materialize(
            [raw_posts],
            partition_key="danbooru/garbage.jsonl",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not refused.success
        normalized = dg.materialize(
            [normalized_scores, normalized_scores_suite, norm_score_uniform],
            resources=resources,
            instance=instance,
        )
        assert normalized.success
        assert all(e.passed for e in normalized.get_asset_check_evaluations())
    layout = profile.layout
    danbooru = RawFile(*DANBOORU).output(layout, "posts")
    assert objectstore.is_remote(danbooru) and objectstore.url(danbooru).startswith(memory_root)
    assert objectstore.read_parquet(danbooru).height == 450
    garbage_raw = RawFile("danbooru", "garbage.jsonl")
    assert not garbage_raw.output(layout, "posts").exists()
    assert objectstore.read_parquet(garbage_raw.output(layout, "quarantine")).height == 50
    scores = read_scores(layout)
    assert objectstore.is_remote(scores_root(layout)) and scores.height > 450
    assert not list(layout.data.rglob("*.parquet"))  # nothing stayed on the local disk
